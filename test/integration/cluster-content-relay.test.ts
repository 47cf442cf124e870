// The byte stream two hubs relay `proxy` through (hub/cluster/proxy-relay-stream.ts),
// on a real 3-node NATS cluster, its two ends on connections to different
// servers: flow control holds both ways (a reader that stops, or reads
// slowly, never lets more than the window pile up at either end, and the
// writer is held back), everything arrives once and in order, half-close
// and close cross, and a lost frame, a malformed frame or a dead peer end
// both sides with an error.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { connect, nuid, type NatsConnection } from '@nats-io/transport-node';
import { silentLogger } from '../../common/platform/log.js';
import { encodeFrame, MAX_CHUNK } from '../../hub/cluster/proxy-relay-frames.js';
import { RelayStream } from '../../hub/cluster/proxy-relay-stream.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { sleep, waitFor } from '../helpers/proc.js';

let nats: NatsCluster;
const conns: NatsConnection[] = [];
before(async () => { nats = await startNatsCluster(); });
after(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await nats?.stop();
});

const log = silentLogger();
const WINDOW = 256 * 1024;

async function conn(i: number): Promise<NatsConnection> {
  const c = await connect({ servers: [nats.urls[i % 3]!], noEcho: true });
  conns.push(c);
  return c;
}

/** Two ends of one stream, A on server 1, B on server 2 (both subscribed before anything is sent). */
async function pair(o: { idleMs?: number; deadMs?: number } = {}): Promise<{ a: RelayStream; b: RelayStream; ncA: NatsConnection; ncB: NatsConnection; base: string }> {
  const [ncA, ncB] = [await conn(0), await conn(1)];
  const base = `t.proxy.s.${nuid.next()}`;
  const a = new RelayStream({ nc: ncA, send: `${base}.b`, recv: `${base}.a`, window: WINDOW, peerWindow: WINDOW, log, ...o });
  const b = new RelayStream({ nc: ncB, send: `${base}.a`, recv: `${base}.b`, window: WINDOW, peerWindow: WINDOW, log, ...o });
  // As the relay's open request/reply does: one round trip A -> B -> A after both subscribed, so each
  // server has learned the other end's interest (it travels the same route, before the request and reply).
  const hello = ncB.subscribe(`${base}.hello`, { callback: (_e, m) => { m.respond(); } });
  await waitFor('the ends see each other', async () => (await ncA.request(`${base}.hello`, undefined, { timeout: 500 }).then(() => true, () => false)) || null, 10_000, 50);
  hello.unsubscribe();
  return { a, b, ncA, ncB, base };
}

/** Write TOTAL random bytes into S as fast as it takes them; resolves with their sha256 once all were accepted. */
function writeAll(s: RelayStream, total: number, onStall: () => void): Promise<string> {
  const h = createHash('sha256');
  let left = total;
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    const more = (): void => {
      while (left > 0) {
        const chunk = randomBytes(Math.min(100_000, left));
        left -= chunk.length;
        h.update(chunk);
        if (!s.write(chunk)) { onStall(); s.once('drain', more); return; }
      }
      s.end(() => resolve(h.digest('hex')));
    };
    more();
  });
}

test('a reader that stops holds the writer back: at most the window is in flight, nothing piles up; then everything arrives once, in order', async () => {
  const { a, b } = await pair();
  b.pause();
  let stalls = 0;
  const written = writeAll(a, 24 << 20, () => { stalls++; });
  // B reads nothing: A fills B's window and must stop there.
  await waitFor('the writer held back', () => (stalls > 0 && a.inFlight === WINDOW) || null, 10_000, 20);
  await sleep(500);
  const held = { inFlight: a.inFlight, aBuffered: a.writableLength, bBuffered: b.readableLength };
  assert.ok(held.inFlight <= WINDOW, JSON.stringify(held));
  assert.ok(held.aBuffered <= 2 * 100_000, JSON.stringify(held));
  assert.ok(held.bBuffered <= WINDOW + MAX_CHUNK, JSON.stringify(held));
  // Nothing moved while B did not read.
  await sleep(300);
  assert.equal(a.inFlight, held.inFlight);
  // A slow reader: 64 KiB every 5 ms. Neither end ever holds more than the window.
  const h = createHash('sha256');
  let got = 0;
  let worstB = 0;
  let worstInFlight = 0;
  const done = new Promise<void>((resolve, reject) => {
    b.on('error', reject);
    b.on('end', () => resolve());
    const tick = setInterval(() => {
      worstB = Math.max(worstB, b.readableLength);
      worstInFlight = Math.max(worstInFlight, a.inFlight);
      let c: Buffer | null;
      let n = 0;
      while (n < 64 * 1024 && (c = b.read() as Buffer | null) !== null) { h.update(c); got += c.length; n += c.length; }
    }, 5);
    b.once('end', () => clearInterval(tick));
  });
  b.resume();
  b.pause(); // paused mode: read() drives the flow, at the reader's pace
  await done;
  const sent = await written;
  assert.equal(got, 24 << 20);
  assert.equal(h.digest('hex'), sent);
  assert.ok(worstB <= WINDOW + MAX_CHUNK, `B buffered up to ${worstB}`);
  assert.ok(worstInFlight <= WINDOW, `up to ${worstInFlight} in flight`);
  b.end();
  await Promise.all([closed(a), closed(b)]);
});

function closed(s: RelayStream): Promise<Error | null> {
  return new Promise((resolve) => {
    let err: Error | null = null;
    s.on('error', (e) => { err = e; });
    if (s.destroyed) { resolve(null); return; }
    s.once('close', () => resolve(err));
  });
}

function readAll(s: RelayStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let t = '';
    s.on('data', (c: Buffer) => { t += c.toString(); });
    s.on('end', () => resolve(t));
    s.on('error', reject);
  });
}

test('half-close crosses both ways: A ends its side, B still answers; both close cleanly', async () => {
  const { a, b } = await pair();
  const atB = readAll(b);
  const atA = readAll(a);
  a.end('question');
  assert.equal(await atB, 'question');
  b.write('answer after the question ended');
  b.end();
  assert.equal(await atA, 'answer after the question ended');
  assert.deepEqual(await Promise.all([closed(a), closed(b)]), [null, null]);
});

test('a lost data frame (a gap in the numbering) ends both sides with an error; so does a malformed frame', async () => {
  for (const bogus of [encodeFrame({ t: 'data', seq: 7, data: Buffer.from('out of order') }), Buffer.from([9, 9, 9])]) {
    const { a, b, base } = await pair();
    const [ea, eb] = [closed(a), closed(b)];
    let seen = '';
    b.on('data', (c: Buffer) => { seen += c.toString(); });
    a.write('one');
    await waitFor('the first chunk through', () => seen === 'one' || null, 5000, 10);
    const third = await conn(2);
    third.publish(`${base}.b`, bogus);
    const [errA, errB] = await Promise.all([ea, eb]);
    assert.ok(errB, 'B failed');
    assert.match(errB!.message, bogus.length === 3 ? /unknown frame type 9/ : /lost between hubs/);
    assert.ok(errA, 'A was told');
    assert.equal((errA as Error & { code?: string }).code, (errB as Error & { code?: string }).code);
  }
});

test('the other hub dies (its NATS connection gone): this side ends with an error within the dead-peer deadline', async () => {
  const { a, b, ncA } = await pair({ idleMs: 200, deadMs: 1500 });
  a.on('error', () => undefined); // A's own side gives up too: it hears nothing either
  const eb = closed(b);
  a.write('hello');
  await ncA.close(); // as a kill -9 of hub A looks from NATS: no close frame, no more pings
  const t0 = Date.now();
  const err = await eb;
  assert.ok(err, 'B failed');
  assert.match(err!.message, /nothing from the other hub/);
  assert.ok(Date.now() - t0 < 5000, `after ${Date.now() - t0} ms`);
  a.destroy();
});
