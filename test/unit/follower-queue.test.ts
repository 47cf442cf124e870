// The text a follower holds for a reader that does not read
// (common/platform/follower-queue.ts). Its text is bounded by the follower's
// skipping, but each skipped line used to leave its place (a null) in the
// queue until the reader took from it: a reader that never reads kept every
// place, ~10 bytes per skipped line (found by review: 5,000,000 skipped lines
// held 50.7 MiB behind a 64 KiB follower). Places are squeezed out now;
// what the reader gets is unchanged: one notice per gap, the rest in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FollowerQueue } from '../../common/platform/follower-queue.js';

const notices = { skipped: (group: string, lines: number) => `[${lines} lines of ${group} skipped]\n` };

test('a reader that never reads: 2,000,000 short lines through a 64 KiB queue hold a bounded number of places; the reader then gets one notice and the newest lines in order', () => {
  const q = new FollowerQueue();
  const bound = 64 * 1024;
  let maxPlaces = 0;
  const kept = { text: 'job started\n', group: null, bytes: 12 };
  q.add(kept, kept.bytes);
  for (let i = 0; i < 2_000_000; i++) {
    const text = `l${i}\n`;
    const bytes = Buffer.byteLength(text);
    q.add({ text, group: 'out', bytes }, bytes);
    while (q.queuedBytes > bound) q.skipOldest();
    if (q.places > maxPlaces) maxPlaces = q.places;
  }
  // The text is ~64 KiB of ~9-byte lines (~7,300 of them); places may be at most about twice that.
  assert.ok(maxPlaces < 20_000, `${maxPlaces} places held`);
  const out = q.take(Number.MAX_SAFE_INTEGER, notices);
  const lines = out.split('\n').filter(Boolean);
  assert.equal(lines[0], 'job started');
  const notice = /^\[(\d+) lines of out skipped\]$/.exec(lines[1]!);
  assert.ok(notice, lines[1]);
  const rest = lines.slice(2).map((l) => Number(l.slice(1)));
  assert.equal(Number(notice[1]) + rest.length, 2_000_000, 'every line is either read or counted as skipped');
  assert.ok(rest.every((n, i) => i === 0 || n === rest[i - 1]! + 1), 'the newest lines, in order');
  assert.equal(rest[rest.length - 1], 1_999_999);
  assert.ok(q.empty);
});
