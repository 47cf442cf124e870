// A compromised host that ignores the SSH window on a channel other than its
// control channel. ssh2 drops a packet only when the window is exactly 0, so
// once a packet overshoots it, every later one is buffered; the hub pauses a
// service channel piped into a slow service, and an admin proxy channel piped
// into a slow admin. Before the fix: 200 MiB in 30,001-byte packets into a
// service channel whose service did not read took the hub +288 MiB. Now the
// connection is cut with INBOUND_OVERRUN once the channel holds
// limits.sessionOverrunBytes (8 MiB). A real hub; a raw ssh2 client with the
// host's key; a TCP "service" that never reads; an admin that never reads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { sleep, waitFor, raceTimeout } from '../helpers/proc.js';
import { MiB, rssBytes, watchRss } from '../helpers/rss.js';
import { openDirect, overrun, rawPeer } from '../helpers/raw-peer.js';
import { helloFor } from '../helpers/raw-agent.js';
import { CONTROL_SUBSYSTEM } from '../../common/protocol/version.js';

const TOTAL = 160 * MiB;
const PACKET = 30_001;
const LIMIT_MS = 30_000;

let fleet: TestFleet;
let stalled: net.Server;
const held: net.Socket[] = [];

before(async () => {
  // A service that accepts and never reads: the hub's socket to it fills and the channel is paused.
  stalled = net.createServer((s) => { s.pause(); held.push(s); });
  await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', () => r()));
  const port = (stalled.address() as net.AddressInfo).port;
  fleet = await TestFleet.create({ hubSettings: { services: { svc: `127.0.0.1:${port}` } } });
  await fleet.addHost('evil');
  await fleet.startHub();
});
after(async () => {
  for (const s of held) s.destroy();
  stalled?.close();
  await fleet?.close();
});

const evilPeer = () => rawPeer({ port: fleet.sshPort, name: 'evil', keyPath: fleet.keys.get('evil')!.keyPath });

test('160 MiB past the window into a service channel whose service does not read: the connection is cut with INBOUND_OVERRUN and the hub stays under baseline + 64 MiB', async (t) => {
  const pid = fleet.hub!.child.pid!;
  await sleep(500);
  const baseline = rssBytes(pid);
  const evil = await evilPeer();
  const ch = await openDirect(evil.client, 'svc');
  assert.ok(ch, 'the service channel opens');
  ch.on('error', () => undefined);
  const rss = watchRss(pid);
  const sent = await overrun(ch, { total: TOTAL, packet: PACKET, deadline: Date.now() + LIMIT_MS, stop: evil.isClosed });
  await raceTimeout(evil.closed, 5000, undefined);
  await sleep(500);
  const peak = rss.stop();
  t.diagnostic(`sent ${(sent / MiB).toFixed(0)} MiB; hub RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB`);
  assert.ok(evil.isClosed(), 'the hub cut the connection');
  assert.ok(peak < baseline + 64 * MiB, `peak ${(peak / MiB).toFixed(0)} MiB over baseline ${(baseline / MiB).toFixed(0)} MiB`);
  assert.match(fleet.hub!.output(), /"channel":"service".*ignores the SSH window/);
});

test('past the window into an admin proxy channel whose admin does not read: the connection is cut with INBOUND_OVERRUN', async (t) => {
  const evil = await evilPeer();
  const control = await new Promise<import('ssh2').ClientChannel>((resolve, reject) => evil.client.subsys(CONTROL_SUBSYSTEM, (err, c) => (err ? reject(err) : resolve(c))));
  let got = '';
  control.on('data', (d: Buffer) => { got += d.toString(); });
  control.write(helloFor('evil'));
  await waitFor('welcome', () => got.includes('"welcome"'), 10_000);
  await new Promise<void>((resolve, reject) => evil.client.forwardIn('127.0.0.1', 22, (err) => (err ? reject(err) : resolve())));
  let sent = 0;
  const flooded = new Promise<void>((resolve) => {
    evil.client.on('tcp connection', (_info, accept) => {
      const ch = accept();
      ch.on('error', () => undefined);
      void overrun(ch, { total: TOTAL, packet: PACKET, deadline: Date.now() + LIMIT_MS, stop: evil.isClosed }).then((n) => { sent = n; resolve(); });
    });
  });
  // An admin that asks for the proxy and then reads nothing.
  const admin = net.connect(path.join(fleet.fleetDir, 'hub.sock'));
  admin.on('error', () => undefined);
  admin.write(`${JSON.stringify({ op: 'proxy', host: 'evil', port: 22 })}\n`);
  admin.pause();
  await raceTimeout(flooded, LIMIT_MS + 5000, undefined);
  await raceTimeout(evil.closed, 5000, undefined);
  t.diagnostic(`sent ${(sent / MiB).toFixed(0)} MiB before the cut`);
  admin.destroy();
  assert.ok(evil.isClosed(), 'the hub cut the connection');
  assert.match(got, /INBOUND_OVERRUN/);
  assert.match(fleet.hub!.output(), /"channel":"proxy".*ignores the SSH window/);
});
