// What hubs say to each other to relay `proxy` (hub/cluster/proxy-relay-frames.ts)
// is validated at the edge: frames round-trip, and anything else is refused
// with a message, never half-read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrame, encodeFrame, encodeJson, MAX_CHUNK, parseOpenReply, parseOpenRequest, type Frame } from '../../hub/cluster/proxy-relay-frames.js';

test('frames round-trip', () => {
  const frames: Frame[] = [
    { t: 'data', seq: 1, data: Buffer.from('hello') },
    { t: 'data', seq: 4_000_000_000, data: Buffer.alloc(MAX_CHUNK, 7) },
    { t: 'credit', consumed: 2 ** 40 },
    { t: 'eof', seq: 9 },
    { t: 'close' },
    { t: 'close', code: 'FORBIDDEN', message: 'host "web1" refuses port 25' },
    { t: 'close', seq: 0 },
    { t: 'close', code: 'FORWARD_FAILED', message: 'm', seq: 0xffffffff },
    { t: 'ping' }, // version 1: no state
    { t: 'ping', state: { seq: 0, eof: false, consumed: 0 } },
    { t: 'ping', state: { seq: 4_000_000_000, eof: true, consumed: 2 ** 40 } },
  ];
  for (const f of frames) {
    const back = decodeFrame(encodeFrame(f));
    if (f.t === 'data' && back.t === 'data') assert.deepEqual({ ...back, data: Buffer.from(back.data) }, { ...f, data: Buffer.from(f.data) });
    else assert.deepEqual(back, f);
  }
});

/** A version 2 ping whose credit total is N (which encodeFrame's callers never produce unless it is a count). */
function pingCounting(n: number): Buffer {
  const b = Buffer.from(encodeFrame({ t: 'ping', state: { seq: 1, eof: false, consumed: 0 } }));
  b.writeDoubleBE(n, 6);
  return b;
}

test('malformed frames are refused', () => {
  const bad: Array<[Uint8Array, RegExp]> = [
    [Buffer.from([]), /unknown frame type/],
    [Buffer.from([6]), /unknown frame type 6/],
    [Buffer.from([1, 0, 0, 0, 1]), /data frame of a wrong size/],
    [Buffer.concat([Buffer.from([1, 0, 0, 0, 1]), Buffer.alloc(MAX_CHUNK + 1)]), /data frame of a wrong size/],
    [Buffer.from([2, 0, 0]), /credit frame of a wrong size/],
    [encodeFrame({ t: 'credit', consumed: 1 }).fill(0xff, 1), /credit frame with a bad count/],
    [Buffer.from([3, 0]), /eof frame of a wrong size/],
    [Buffer.concat([Buffer.from([4]), Buffer.from('{nope')]), /close frame is not JSON/],
    [Buffer.concat([Buffer.from([4]), Buffer.alloc(5000, 0x20)]), /close frame too large/],
    [Buffer.from([5, 0]), /ping frame of a wrong size/],
    [Buffer.alloc(15, 5), /ping frame of a wrong size/],
    [Buffer.from(encodeFrame({ t: 'ping', state: { seq: 1, eof: false, consumed: 0 } })).fill(2, 5, 6), /ping frame with bad flags/],
    [encodeFrame({ t: 'ping', state: { seq: 0, eof: true, consumed: 0 } }), /ping frame with bad flags/], // an end of data takes a number
    [Buffer.from(encodeFrame({ t: 'ping', state: { seq: 1, eof: false, consumed: 0 } })).fill(0xff, 6), /ping frame with a bad count/],
    [pingCounting(0.5), /ping frame with a bad count/],
    [pingCounting(-1), /ping frame with a bad count/],
    [Buffer.concat([Buffer.from([4]), Buffer.from('{"seq":-1}')]), /close frame with a bad seq/],
    [Buffer.concat([Buffer.from([4]), Buffer.from('{"seq":"7"}')]), /close frame with a bad seq/],
    [Buffer.concat([Buffer.from([4]), Buffer.from('{"seq":4294967296}')]), /close frame with a bad seq/],
  ];
  for (const [raw, re] of bad) assert.throws(() => decodeFrame(raw), re);
  // A close frame with a code that is not in the registry keeps its message, drops the code.
  assert.deepEqual(decodeFrame(Buffer.concat([Buffer.from([4]), Buffer.from('{"code":"NOPE","message":"m"}')])), { t: 'close', message: 'm' });
});

test('open requests and replies are validated; a version 1 hub\'s request and reply (no relay field) read as relay version 1', () => {
  const ok = { v: 1, relay: 2, host: 'web1', port: 22, stream: 'abcdefgh12345678', from: 'hub-a', window: 262144 } as const;
  assert.deepEqual(parseOpenRequest(encodeJson(ok)), ok);
  const { relay: _, ...older } = ok;
  assert.deepEqual(parseOpenRequest(Buffer.from(JSON.stringify(older))), { ...older, relay: 1 });
  // A newer asker names a higher version: read, the holder picks the lower one (proxy-relay.ts).
  assert.deepEqual(parseOpenRequest(encodeJson({ ...ok, relay: 7 })), { ...ok, relay: 7 });
  const bad: Array<[unknown, RegExp]> = [
    [{ ...ok, v: 2 }, /unknown version/],
    [{ ...ok, relay: 0 }, /no valid relay version/],
    [{ ...ok, relay: 1.5 }, /no valid relay version/],
    [{ ...ok, relay: '2' }, /no valid relay version/],
    [{ ...ok, host: '../web1' }, /no valid host/],
    [{ ...ok, port: 0 }, /no valid port/],
    [{ ...ok, port: 70000 }, /no valid port/],
    [{ ...ok, stream: 'a.b.>' }, /no valid stream id/],
    [{ ...ok, from: 'Hub A' }, /no valid hub/],
    [{ ...ok, window: 1 }, /no valid window/],
    [{ ...ok, window: 2 ** 40 }, /no valid window/],
  ];
  for (const [v, re] of bad) assert.throws(() => parseOpenRequest(Buffer.from(JSON.stringify(v))), re);
  assert.throws(() => parseOpenRequest(Buffer.from('not json')), /not JSON/);
  assert.deepEqual(parseOpenReply(encodeJson({ ok: true, window: 262144, relay: 2 })), { ok: true, window: 262144, relay: 2 });
  assert.deepEqual(parseOpenReply(Buffer.from('{"ok":true,"window":262144}')), { ok: true, window: 262144, relay: 1 });
  assert.throws(() => parseOpenReply(Buffer.from('{"ok":true,"window":262144,"relay":3}')), /malformed open reply/); // higher than we asked
  assert.throws(() => parseOpenReply(Buffer.from('{"ok":true,"window":262144,"relay":0}')), /malformed open reply/);
  assert.deepEqual(parseOpenReply(encodeJson({ ok: false, code: 'FORWARD_FAILED', message: 'nothing listens' })), { ok: false, code: 'FORWARD_FAILED', message: 'nothing listens' });
  assert.throws(() => parseOpenReply(Buffer.from('{"ok":false,"code":"MADE_UP","message":"x"}')), /malformed open reply/);
  assert.throws(() => parseOpenReply(Buffer.from('{"ok":true}')), /malformed open reply/);
});
