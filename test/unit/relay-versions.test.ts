// Relay version 2 (hub/cluster/proxy-relay*.ts) added state to the ping,
// which a version 1 hub refuses (its ping is one byte). During a rolling
// upgrade hubs of both versions relay to each other: the open request says
// which version the asker speaks (absent: 1), the holder picks the lower one
// and says so in its answer (absent: 1), and pings toward a version 1 hub
// stay one byte. Driven over the in-process transport of test/helpers/lossy-nats.ts
// (the older hub's side is its messages, written out here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { silentLogger } from '../../common/platform/log.js';
import { ProxyRelay } from '../../hub/cluster/proxy-relay.js';
import { encodeJson, parseOpenReply } from '../../hub/cluster/proxy-relay-frames.js';
import { RelayStream } from '../../hub/cluster/proxy-relay-stream.js';
import { FRAME, lossyNats, type LossyNats } from '../helpers/lossy-nats.js';
import { sleep, waitFor } from '../helpers/proc.js';

const log = silentLogger();
const W = 256 * 1024;

/** A current hub holding web1, whose channel to it echoes. */
function holder(net: LossyNats): ProxyRelay {
  const r = new ProxyRelay({ nc: net.nc, prefix: 't', hubName: 'hub-a', holds: (h) => h === 'web1', openLocal: async () => new PassThrough(), log, idleMs: 20 });
  r.start();
  return r;
}

/** The sizes of the pings published on SUBJECT. */
function pings(net: LossyNats, subject: string): number[] {
  return net.sent.filter((m) => m.subject === subject && m.data[0] === FRAME.ping).map((m) => m.data.length);
}

/** The subjects' base of the stream the (only) open request named. */
function streamBase(net: LossyNats): string {
  const open = net.sent.find((m) => m.subject === 't.proxy.open.web1')!;
  return `t.proxy.s.${(JSON.parse(Buffer.from(open.data).toString()) as { stream: string }).stream}`;
}

function echoed(s: RelayStream, text: string): Promise<void> {
  let got = '';
  s.on('data', (c: Buffer) => { got += c.toString(); });
  s.write(text);
  return waitFor('the echo', () => got === text || null, 2000, 5).then(() => undefined);
}

test('two current hubs agree on version 2: both ends ping with their state', async () => {
  const net = lossyNats();
  const a = holder(net);
  const b = new ProxyRelay({ nc: net.nc, prefix: 't', hubName: 'hub-b', holds: () => false, openLocal: () => { throw new Error('not here'); }, log, idleMs: 20 });
  const s = await b.connect('web1', 22);
  await echoed(s, 'hello');
  await sleep(100);
  const [toA, toB] = [pings(net, `${streamBase(net)}.a`), pings(net, `${streamBase(net)}.b`)];
  assert.ok(toA.length > 0 && toB.length > 0);
  assert.ok(toB.every((n) => n === 14), `holder's pings: ${toB.join(',')}`);
  assert.equal(toA.at(-1), 14, `asker's pings: ${toA.join(',')}`);
  s.destroy();
  await Promise.all([a.close(), b.close()]);
});

test('an older asker (no relay field) gets version 1 from a current holder: one-byte pings only, and the stream works', async () => {
  const net = lossyNats();
  const a = holder(net);
  // What a version 1 hub sends: the request without `relay`, then its end of the stream (bare pings, like this one at peerRelay 1).
  const stream = 'abcdefgh12345678';
  const s = new RelayStream({ nc: net.nc, send: `t.proxy.s.${stream}.a`, recv: `t.proxy.s.${stream}.b`, window: W, peerWindow: 0, peerRelay: 1, log, idleMs: 20 });
  const answer = await net.nc.request('t.proxy.open.web1', Buffer.from(JSON.stringify({ v: 1, host: 'web1', port: 22, stream, from: 'hub-old', window: W })), { timeout: 1000 });
  const reply = parseOpenReply(answer.data);
  assert.deepEqual(reply, { ok: true, window: W, relay: 1 });
  s.setPeer(reply.ok ? reply.window : 0, 1);
  await echoed(s, 'hello from an older hub');
  await sleep(100);
  const toOld = pings(net, `t.proxy.s.${stream}.b`);
  assert.ok(toOld.length > 0 && toOld.every((n) => n === 1), `pings toward the older hub: ${toOld.join(',')}`);
  s.destroy();
  await a.close();
});

test('a current asker and an older holder (its answer has no relay field): version 1, one-byte pings only', async () => {
  const net = lossyNats();
  let far: RelayStream | undefined;
  // The older holder: answers without `relay` and runs its end with bare pings, echoing.
  net.nc.subscribe('t.proxy.open.*', { callback: (_e, msg) => {
    const req = JSON.parse(Buffer.from(msg.data).toString()) as { stream: string; relay?: number };
    assert.equal(req.relay, 2, 'the asker says which version it speaks');
    far = new RelayStream({ nc: net.nc, send: `t.proxy.s.${req.stream}.b`, recv: `t.proxy.s.${req.stream}.a`, window: W, peerWindow: W, peerRelay: 1, log, idleMs: 20 });
    far.pipe(far);
    net.nc.publish(msg.reply!, encodeJson({ ok: true, window: W } as Parameters<typeof encodeJson>[0]));
  } });
  const b = new ProxyRelay({ nc: net.nc, prefix: 't', hubName: 'hub-b', holds: () => false, openLocal: () => { throw new Error('not here'); }, log, idleMs: 20 });
  const s = await b.connect('web1', 22);
  await echoed(s, 'hello to an older hub');
  await sleep(100);
  const toOld = pings(net, `${streamBase(net)}.a`);
  assert.ok(toOld.length > 0 && toOld.every((n) => n === 1), `pings toward the older hub: ${toOld.join(',')}`);
  s.destroy();
  far?.destroy();
  await b.close();
});
