// A host's uploaded log as the dashboard and `bento-hub logs` read it
// (hub/publish/logs.ts decodeLog), with real gzip: a gzip bomb (100 KiB that
// inflates to 100 MiB, found by review: the dashboard took the hub from 71
// to 573 MiB for one) is cut at the cap instead of inflated whole; a
// truncated upload yields what could be read; a plain log over the cap is
// cut too; an ordinary log comes back whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { decodeLog, MAX_LOG_TEXT_BYTES } from '../../hub/publish/logs.js';

const MiB = 1024 * 1024;

test('a gzip bomb is inflated only up to the cap, and says so', async () => {
  const bomb = gzipSync(Buffer.alloc(100 * MiB, 'a'));
  assert.ok(bomb.length < 200 * 1024, `${bomb.length} bytes compressed`);
  const heapBefore = process.memoryUsage().arrayBuffers;
  const r = await decodeLog(bomb, 2 * MiB);
  assert.equal(r.text.length, 2 * MiB);
  assert.equal(r.complete, false);
  assert.equal(r.cutAt, 2 * MiB);
  // Stopped near the cap: not the 100 MiB the bomb holds (zlib hands out 16 KiB chunks).
  assert.ok(process.memoryUsage().arrayBuffers - heapBefore < 40 * MiB, 'inflated far past the cap');
});

test('an ordinary gzipped log comes back whole; a truncated upload gives what could be read; plain text over the cap is cut', async () => {
  const text = Array.from({ length: 5000 }, (_, i) => `building line ${i}\n`).join('');
  assert.deepEqual(await decodeLog(gzipSync(Buffer.from(text))), { text, complete: true });
  const gz = gzipSync(Buffer.from(text));
  const cut = await decodeLog(gz.subarray(0, Math.floor(gz.length / 2)));
  assert.equal(cut.complete, false);
  assert.equal(cut.cutAt, undefined);
  assert.ok(text.startsWith(cut.text) && cut.text.length > 0 && cut.text.length < text.length);
  assert.deepEqual(await decodeLog(Buffer.from('plain log\n')), { text: 'plain log\n', complete: true });
  assert.deepEqual(await decodeLog(Buffer.from('0123456789'), 4), { text: '0123', complete: false, cutAt: 4 });
  assert.equal(MAX_LOG_TEXT_BYTES, 32 * MiB);
});
