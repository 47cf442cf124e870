// A compromised host (its valid key) must not exhaust the hub through what one
// authenticated connection may hold (hub/server/conn-guard.ts). A real hub;
// raw ssh2 clients with registered keys. Before these limits: 20,000
// tcpip-forward requests for distinct ports cost 19.9 s of hub CPU (a list
// copied per request), 50,000 channel opens on one connection +63 MiB, and
// 300 authenticated connections that never said hello stayed open for good.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TestFleet } from '../helpers/fleet.js';
import { sleep, waitFor, raceTimeout } from '../helpers/proc.js';
import { openBareSession, rawPeer, type RawPeer } from '../helpers/raw-peer.js';
import { connectedLines } from './hostile-helpers.js';

const HELLO_TIMEOUT_MS = 2000;
const PER_HOST = 4;
/** Timer and scheduling slack on a shared 2-core machine. */
const SLACK_MS = 3000;

let fleet: TestFleet;

before(async () => {
  fleet = await TestFleet.create({ hubSettings: { limits: { helloTimeoutMs: HELLO_TIMEOUT_MS, connectionsPerHost: PER_HOST } } });
  await fleet.addHosts(['evil', 'puller', 'good']);
  await fleet.startHub();
});
after(async () => { await fleet?.close(); });

const peer = (name: string): Promise<RawPeer> => rawPeer({ port: fleet.sshPort, name, keyPath: fleet.keys.get(name)!.keyPath });

/** User + system CPU time of `pid` so far, in ms (/proc/PID/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

const warnLines = (msg: string): number => fleet.hub!.output().split('\n').filter((l) => l.includes(msg)).length;

test('3,000 reverse-forward requests for distinct ports on one connection: at most limits.forwardsPerSession (16) are recorded, the rest refused, with a few log lines', async (t) => {
  const evil = await peer('evil');
  const cpu0 = cpuMs(fleet.hub!.child.pid!);
  const results = await Promise.all(Array.from({ length: 3000 }, (_, i) => new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 30_000);
    evil.client.forwardIn('127.0.0.1', 10_000 + i, (err) => { clearTimeout(timer); resolve(!err); });
  })));
  const cpu = cpuMs(fleet.hub!.child.pid!) - cpu0;
  const accepted = results.filter(Boolean).length;
  t.diagnostic(`${accepted} of 3000 accepted; hub CPU ${cpu} ms`);
  assert.equal(accepted, 16);
  // At most 5 lines per kind every 10 s and a summary.
  assert.ok(warnLines('refused reverse forward') <= 6, `${warnLines('refused reverse forward')} log lines`);
  evil.end();
  await evil.closed;
});

test('500 bare session channels on one connection: at most limits.channelsPerConnection (64) open; closing the connection frees its count', async (t) => {
  const evil = await peer('evil');
  let accepted = 0;
  for (let batch = 0; batch < 10; batch++) {
    const r = await Promise.all(Array.from({ length: 50 }, () => openBareSession(evil.client)));
    accepted += r.filter(Boolean).length;
  }
  t.diagnostic(`${accepted} of 500 channels accepted`);
  assert.equal(accepted, 64);
  assert.ok(warnLines('refused channel') <= 6, `${warnLines('refused channel')} log lines`);
  evil.end();
  await evil.closed;
  // A new connection of the same host has its own count.
  const again = await peer('evil');
  assert.equal(await openBareSession(again.client), true);
  again.end();
  await again.closed;
});

test('authenticated connections that never say hello: at most limits.connectionsPerHost at once (the oldest are cut), all cut after limits.helloTimeoutMs; an SFTP-only connection (pull mode) and an agent that said hello stay', async (t) => {
  const hub = fleet.hub!;
  fleet.startAgent('good', await fleet.agentConfig('good'));
  await fleet.waitConnected(['good']);
  const puller = await peer('puller');
  const sftpUp = await new Promise<boolean>((resolve) => puller.client.sftp((err) => resolve(!err)));
  assert.ok(sftpUp, 'the jail serves an SFTP-only connection');
  const silent: RawPeer[] = [];
  for (let i = 0; i < 8; i++) silent.push(await peer('evil'));
  // Cutting is asynchronous (an error line, then the end): give it a moment.
  await waitFor('the oldest silent connections cut', () => silent.filter((p) => !p.isClosed()).length <= PER_HOST, 3000);
  assert.ok(silent.slice(0, 4).every((p) => p.isClosed()), 'the oldest went first');
  const t0 = Date.now();
  await raceTimeout(Promise.all(silent.map((p) => p.closed)), HELLO_TIMEOUT_MS + SLACK_MS, undefined);
  const open = silent.filter((p) => !p.isClosed()).length;
  t.diagnostic(`${open} of 8 silent connections open ${Date.now() - t0} ms later`);
  assert.equal(open, 0, 'every connection without hello is cut at its deadline');
  await sleep(HELLO_TIMEOUT_MS);
  assert.equal(puller.isClosed(), false, 'a connection using SFTP without a control channel is not cut');
  assert.equal(connectedLines(hub, 'good'), 1, 'the agent that said hello kept its one connection');
  assert.ok(!/"host":"good"[^\n]*(no hello|more authenticated connections)/.test(hub.output()), 'the agent that said hello was never cut');
  assert.ok(warnLines('said no hello') <= 6);
  puller.end();
});
