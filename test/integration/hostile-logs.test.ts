// What a peer sends must not become one log line per packet or request, nor
// put its own long strings into the log. Before: 20,000 refused direct-tcpip
// opens were 20,000 warn lines; one unauthenticated connection made 5,000
// "authentication refused" lines in 10 s; 3,000 dashboard requests with an
// 8 KB Origin were 21.8 MiB of log. Now refusals go through the hub's
// LogThrottle (at most 5 lines per kind every 10 s, then a summary), what the
// peer chose is cut short, and a connection is ended after a few refused
// authentication attempts. A real hub; raw ssh2 clients; raw HTTP requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import ssh2 from 'ssh2';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, sleep, raceTimeout } from '../helpers/proc.js';
import { openDirect, rawPeer } from '../helpers/raw-peer.js';
import { request } from './web-helpers.js';
import { scrape } from './hostile-helpers.js';

let fleet: TestFleet;
let dashboard = '';
let metricsUrl = '';

before(async () => {
  const dport = await freePort();
  const mport = await freePort();
  dashboard = `http://127.0.0.1:${dport}`;
  metricsUrl = `http://127.0.0.1:${mport}/metrics`;
  fleet = await TestFleet.create({ hubSettings: { dashboard: { listen: `127.0.0.1:${dport}` }, metrics: { listen: `127.0.0.1:${mport}` } } });
  await fleet.addHost('evil');
  await fleet.addHost('other');
  await fleet.startHub();
});
after(async () => { await fleet?.close(); });

const lines = (msg: string): string[] => fleet.hub!.output().split('\n').filter((l) => l.includes(msg));

test('2,000 refused direct-tcpip opens and 200 refused global requests with long names: a few log lines, none long; another host refused meanwhile is named; counted in /metrics', async () => {
  const evil = await rawPeer({ port: fleet.sshPort, name: 'evil', keyPath: fleet.keys.get('evil')!.keyPath });
  const other = await rawPeer({ port: fleet.sshPort, name: 'other', keyPath: fleet.keys.get('other')!.keyPath });
  const long = 'd'.repeat(4000);
  for (let batch = 0; batch < 20; batch++) {
    const r = await Promise.all(Array.from({ length: 100 }, () => openDirect(evil.client, long)));
    assert.ok(r.every((c) => c === null), 'refused');
    // Within the first batches' window, after evil used up the kind's 5 lines.
    if (batch === 0) assert.equal(await openDirect(other.client, 'nothing-here'), null);
  }
  await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 10_000);
    evil.client.forwardIn(long, 80, () => { clearTimeout(t); resolve(); });
  })));
  await sleep(300);
  const tcpip = lines('refused direct-tcpip channel');
  const global = lines('refused global request');
  assert.ok(tcpip.length <= 6, `${tcpip.length} direct-tcpip lines`);
  assert.ok(global.length <= 6, `${global.length} global request lines`);
  for (const l of [...tcpip, ...global]) assert.ok(l.length < 1000, `a line of ${l.length} bytes`);
  assert.equal(tcpip.filter((l) => l.includes('"host":"other"')).length, 1, 'the other host\'s refusal is logged, not hidden by evil\'s flood (before: suppressed for the window)');
  const m = await scrape(metricsUrl);
  assert.equal(m.get('bento_peer_refusals_total{kind="direct-tcpip"}'), 2001);
  assert.equal(m.get('bento_peer_refusals_total{kind="request"}'), 200);
  evil.end();
  other.end();
});

test('one unauthenticated connection trying to authenticate again and again: cut after a few attempts, a few log lines', async (t) => {
  const sock = net.connect({ host: '127.0.0.1', port: fleet.sshPort, localAddress: '127.0.0.77' });
  sock.on('error', () => undefined);
  const client = new ssh2.Client();
  client.on('error', () => undefined);
  let attempts = 0;
  const started = Date.now();
  const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
  client.connect({
    sock, username: 'evil', readyTimeout: 15_000,
    // Bounded: at most 2,000 attempts or 12 s (the hub's handshake deadline is 10 s).
    authHandler: (_left, _partial, next) => {
      if (++attempts > 2000 || Date.now() - started > 12_000) return next(false as never);
      next({ type: 'password', username: 'evil', password: `guess-${attempts}` });
    },
  } as ssh2.ConnectConfig);
  await raceTimeout(closed, 15_000, undefined);
  client.end();
  await sleep(300);
  const logged = lines('authentication refused').length;
  t.diagnostic(`${attempts} attempts in ${Date.now() - started} ms; ${logged} log lines`);
  assert.ok(attempts <= 8, `${attempts} attempts on one connection`);
  assert.ok(logged <= 6, `${logged} lines`);
});

test('300 dashboard requests with an 8 KB Origin and a foreign Host: refused, and the log grows by a few KB', async () => {
  const before = fleet.hub!.outputChars();
  const origin = `http://${'o'.repeat(8 * 1024)}.example`;
  for (let batch = 0; batch < 10; batch++) {
    const r = await Promise.all(Array.from({ length: 30 }, () => request(`${dashboard}/`, { headers: { Host: 'evil.example', Origin: origin } })));
    assert.ok(r.every((x) => x.status === 403));
  }
  await sleep(300);
  const grew = fleet.hub!.outputChars() - before;
  assert.ok(grew < 32 * 1024, `the log grew by ${grew} bytes`);
  assert.ok(lines('web request refused').length <= 6);
});
