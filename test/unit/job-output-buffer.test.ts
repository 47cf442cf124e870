// The dashboard's in-memory job output (hub/web/job-output.ts), what a page
// opened mid-way is replayed: each line once per writer (a job whose host
// moved mid-job has two writers numbering their own lines; the bus may bring
// a line twice), and what was dropped from the front said per writer, so the
// page's stream (web/job-stream.ts) starts after it and fills nothing there.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobBusEvent } from '../../hub/events/types.js';
import { JobOutputBuffer } from '../../hub/web/job-output.js';

const out = (seq: number, data: string, w?: string): JobBusEvent => ({ ev: 'output', host: 'web1', jobId: 'job-1', seq, ts: 1, stream: 'stdout', data, ...(w !== undefined ? { w } : {}) });

test('a line brought twice is kept once; two writers\' lines under the same seq are both kept', () => {
  const b = new JobOutputBuffer();
  for (const e of [out(1, 'a1', 'A'), out(2, 'a2', 'A'), out(2, 'a2', 'A'), out(2, 'c2', 'C'), out(1, 'a1', 'A'), out(3, 'c3', 'C'), out(3, 'a3', 'A')]) b.onEvent(e);
  const got = b.get('job-1')!;
  assert.deepEqual(got.lines.map((l) => `${l.w}${l.seq} ${l.data}`), ['A1 a1', 'A2 a2', 'C2 c2', 'C3 c3', 'A3 a3']);
  assert.equal(got.dropped, 0);
  b.close();
});

test('untagged lines (a single hub) are as before; past the per-job bound the front goes, each writer\'s last one dropped kept', () => {
  const b = new JobOutputBuffer({ maxBytesPerJob: 5 * (2 + 16), maxBytesTotal: 1024 * 1024, keepAfterEndMs: 60_000 });
  for (let s = 1; s <= 8; s++) b.onEvent(out(s, `x${s}`));
  let got = b.get('job-1')!;
  assert.deepEqual(got.lines.map((l) => l.seq), [4, 5, 6, 7, 8]);
  assert.deepEqual([got.dropped, got.cutLines, [...got.cut]], [3, 3, [['', 3]]]);
  b.onEvent(out(8, 'x8'));
  for (let s = 9; s <= 10; s++) b.onEvent(out(s, `c${s}`, 'C'));
  got = b.get('job-1')!;
  assert.deepEqual(got.lines.map((l) => `${l.w}${l.seq}`), ['7', '8', 'C9', 'C10'], 'the repeated 8 not kept; C\'s 3-byte line took one more');
  assert.deepEqual([...got.cut], [['', 6]]);
  b.close();
});
