// The relay stream (hub/cluster/proxy-relay-stream.ts) when core NATS loses
// one frame. Core NATS is at most once, and a frame that nothing follows in
// its direction (a credit while the writer waits at the full window, the end
// of data, the last chunk) used to be lost without a trace: the stream hung,
// its pings keeping both sides alive. Each end's ping now says what it sent
// and credited; these cases check that every such loss ends both sides with
// FORWARD_FAILED (or, for a credit, is repaired) within a ping or two, and
// that a healthy stream with pings racing its data is never taken for lossy.
//
// Two real RelayStreams over an in-process transport (test/helpers/lossy-nats.ts)
// rather than a nats-server: a real server cannot be made to drop one chosen
// frame. Ordering per subject and asynchronous delivery are kept; the stream
// on a real cluster is test/integration/cluster-content-relay.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { silentLogger } from '../../common/platform/log.js';
import { RelayStream } from '../../hub/cluster/proxy-relay-stream.js';
import { FRAME, lossyNats, type LossyNats } from '../helpers/lossy-nats.js';
import { sleep, waitFor } from '../helpers/proc.js';

const log = silentLogger();
const W = 256 * 1024;
// Pings every 100 ms; the dead-peer deadline is far away, so only the pings' state can end these streams.
const timing = { idleMs: 100, deadMs: 60_000 };
/** A loss must be noticed within this (a few ping periods), never by waiting for the dead-peer deadline. */
const NOTICED_MS = 1500;

type Coded = Error & { code?: string };

/** b: the asking hub's end (sends on s.a); a: the holder's (sends on s.b). */
function pair(nc: NatsConnection, t: { idleMs: number; deadMs: number } = timing) {
  const b = new RelayStream({ nc, send: 's.a', recv: 's.b', window: W, peerWindow: W, log, ...t });
  const a = new RelayStream({ nc, send: 's.b', recv: 's.a', window: W, peerWindow: W, log, ...t });
  const errs: { a?: Coded; b?: Coded } = {};
  a.on('error', (e: Coded) => { errs.a = e; });
  b.on('error', (e: Coded) => { errs.b = e; });
  return { a, b, errs };
}

/** Both sides ended with FORWARD_FAILED, and B (the receiving side) says frames were lost. */
async function bothFailed(errs: { a?: Coded; b?: Coded }, what: string): Promise<void> {
  await waitFor(`both sides to fail (${what})`, () => (errs.a && errs.b) || null, NOTICED_MS, 10);
  assert.equal(errs.b!.code, 'FORWARD_FAILED', errs.b!.message);
  assert.match(errs.b!.message, /lost between hubs/);
  assert.equal(errs.a!.code, 'FORWARD_FAILED', errs.a!.message);
}

test('a lost credit frame no longer holds the writer at the full window for good: the next ping carries the total, everything arrives', async () => {
  let credits = 0;
  // The first credit B sends is the one it sends when its reader starts again (it read nothing before).
  const { nc } = lossyNats((subject, data) => subject === 's.a' && data[0] === FRAME.credit && ++credits === 1);
  const { a, b, errs } = pair(nc);
  b.pause(); // the admin's ssh reads nothing yet: B's buffer fills, then A's window
  const total = 2 * W;
  a.write(Buffer.alloc(total, 1));
  // Everything A may send is in B's buffer, and B credited none of it (its buffer was over the mark from the first frame).
  await waitFor('B holding the whole window', () => (a.inFlight === W && b.readableLength === W) || null, 2000, 10);
  assert.equal(credits, 0);
  let got = 0;
  b.on('data', (c: Buffer) => { got += c.length; });
  b.resume();
  const t0 = Date.now();
  await waitFor('everything through', () => got === total || null, NOTICED_MS, 10);
  assert.ok(credits >= 1, 'the credit was sent (and lost)');
  assert.ok(Date.now() - t0 < NOTICED_MS);
  assert.deepEqual(errs, {});
  a.destroy(); b.destroy();
});

test('a lost end-of-data frame ends both sides with FORWARD_FAILED (the reader no longer waits for the end for good)', async () => {
  const { nc } = lossyNats((_subject, data) => data[0] === FRAME.eof);
  const { a, b, errs } = pair(nc);
  let got = '';
  let ended = false;
  b.on('data', (c: Buffer) => { got += c.toString(); });
  b.on('end', () => { ended = true; });
  a.end('last words');
  await bothFailed(errs, 'lost end of data');
  assert.equal(got, 'last words', 'the data before it arrived');
  assert.equal(ended, false, 'a lost end is not taken for a clean end');
  assert.match(errs.b!.message, /ended its data after frame 1, the end never arrived/);
});

test('a lost last data frame ends both sides with FORWARD_FAILED although no other data frame follows it', async () => {
  let n = 0;
  const { nc } = lossyNats((subject, data) => subject === 's.b' && data[0] === FRAME.data && ++n === 2);
  const { a, b, errs } = pair(nc);
  let got = '';
  b.on('data', (c: Buffer) => { got += c.toString(); });
  a.write('SSH-2.0-banner\r\n');
  await waitFor('the first chunk through', () => got !== '' || null, 1000, 10);
  a.write('the reply the admin waits for');
  await bothFailed(errs, 'lost last data frame');
  assert.equal(got, 'SSH-2.0-banner\r\n');
  assert.match(errs.b!.message, /sent up to frame 2, only 1 arrived/);
});

test('a last data frame lost just before a clean close: the reader fails instead of ending as if it had everything', async () => {
  let n = 0;
  const { nc } = lossyNats((subject, data) => subject === 's.b' && data[0] === FRAME.data && ++n === 2);
  const { a, b, errs } = pair(nc);
  let ended = false;
  b.on('end', () => { ended = true; });
  b.resume();
  a.write('first');
  await sleep(50);
  a.write('lost', () => a.destroy()); // the host's channel closed right after its last words
  await waitFor('B to fail', () => errs.b || null, NOTICED_MS, 10);
  assert.equal(errs.b!.code, 'FORWARD_FAILED');
  assert.match(errs.b!.message, /sent up to frame 2, only 1 arrived/);
  assert.equal(ended, false);
});

/** Write TOTAL random bytes into S, then end it; resolves with their sha256. */
async function writeAll(s: RelayStream, total: number): Promise<string> {
  const h = createHash('sha256');
  for (let left = total; left > 0;) {
    const chunk = randomBytes(Math.min(100_000, left));
    left -= chunk.length;
    h.update(chunk);
    if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
  }
  await new Promise<void>((r) => s.end(r));
  return h.digest('hex');
}

function readAll(s: RelayStream): Promise<string> {
  const h = createHash('sha256');
  return new Promise((resolve, reject) => {
    s.on('data', (c: Buffer) => h.update(c));
    s.on('end', () => resolve(h.digest('hex')));
    s.on('error', reject);
  });
}

test('no loss: pings sent right behind bursts of data (still in flight) are never taken for a gap; a stopped reader still holds the writer at exactly the window; both directions arrive whole and end cleanly', async () => {
  // 20 ms on the way, a ping every 10 ms: most pings name frames not delivered yet.
  let racing = 0;
  const net: LossyNats = lossyNats((subject, data) => {
    if (data[0] === FRAME.ping && data.length > 1) { // a ping with state
      if (net.sent.some((m) => m.subject === subject && m.data[0] === FRAME.data && !m.delivered)) racing++;
    }
    return false;
  }, 20);
  const { a, b, errs } = pair(net.nc, { idleMs: 10, deadMs: 60_000 });
  // B reads nothing for a while: A stops at the window although B's pings keep coming (they repeat B's credit total, never more).
  b.pause();
  const aWrote = writeAll(a, 3 << 20);
  await waitFor('the writer held at the window', () => a.inFlight === W || null, 2000, 5);
  await sleep(200);
  assert.equal(a.inFlight, W);
  const [atB, atA] = [readAll(b), readAll(a)];
  b.resume();
  const bWrote = writeAll(b, 2 << 20);
  assert.equal(await atB, await aWrote);
  assert.equal(await atA, await bWrote);
  await waitFor('both closed', () => (a.destroyed && b.destroyed) || null, 2000, 10);
  assert.deepEqual(errs, {});
  assert.ok(racing > 10, `pings raced data frames ${racing} times`);
});
