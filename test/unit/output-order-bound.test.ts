// A reader's output waiting behind a fill is bounded (hub/admin/output-order.ts
// MAX_WAITING_BYTES): a host flooding output while a follower's gap is
// being filled (up to 5 s) must not grow the hub's heap by what it floods.
// Past the bound lines are let go and read from the store once the fill is
// done, so the reader still gets every line once, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { silentLogger } from '../../common/platform/log.js';
import { OutputOrder, MAX_WAITING_BYTES } from '../../hub/admin/output-order.js';
import type { OutputLine } from '../../hub/store/types.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const JOB = 'job-flood0001';
const LINE_BYTES = 64 * 1024;
const FLOOD_LINES = 800; // 50 MiB of output behind one held fill
const MiB = 1024 * 1024;

test(`${FLOOD_LINES} lines of 64 KiB behind a held fill: the heap grows by about the bound (${MAX_WAITING_BYTES / MiB} MiB), not by the flood; every line shown once, in order`, async (t) => {
  // The store: line 1 only at first (the bus lost it); every flooded line is stored as it is published,
  // kept as its length and an index, so the test itself holds no copy of the data.
  const stored: Array<{ seq: number; bytes: number }> = [{ seq: 1, bytes: 6 }];
  let held = true;
  let release: () => void = () => undefined;
  const heldRead = new Promise<void>((r) => { release = r; });
  const data = (seq: number, bytes: number): string => (seq === 1 ? 'line 1' : `${seq}:`.padEnd(bytes, 'x'));
  const jobs = {
    readOutput: async (_id: string, o?: { afterSeq?: number }): Promise<OutputLine[]> => {
      if (held) await heldRead;
      return stored.filter((l) => l.seq > (o?.afterSeq ?? 0)).map((l) => ({ seq: l.seq, ts: l.seq, stream: 'stdout' as const, data: data(l.seq, l.bytes) }));
    },
  };
  const shown: number[] = [];
  let ended = false;
  const order = new OutputOrder({ jobs, log: silentLogger(), fillWaitMs: 5000 }, {
    line: (l) => { shown.push(l.seq); },
    skipped: () => assert.fail('nothing is skipped: every line is stored'),
    event: (e) => { if (e.ev === 'end') ended = true; },
  });

  gc();
  const before = v8.getHeapStatistics().used_heap_size;
  // Line 2 shows the gap (line 1 only in the store): the fill waits on the held read, and the flood queues behind it.
  for (let seq = 2; seq <= FLOOD_LINES + 1; seq++) {
    const line = randomBytes(LINE_BYTES / 2).toString('hex'); // a flat string of its own, as a socket's data is
    stored.push({ seq, bytes: line.length });
    order.deliver({ ev: 'output', host: 'web1', jobId: JOB, seq, ts: seq, stream: 'stdout', data: line });
  }
  gc();
  const grown = v8.getHeapStatistics().used_heap_size - before;
  t.diagnostic(`heap grew by ${(grown / MiB).toFixed(1)} MiB with ${(FLOOD_LINES * LINE_BYTES) / MiB} MiB flooded behind the fill`);
  assert.ok(grown < MAX_WAITING_BYTES + 8 * MiB, `the heap grew by ${(grown / MiB).toFixed(1)} MiB while ${(FLOOD_LINES * LINE_BYTES) / MiB} MiB waited behind the fill`);

  held = false;
  release();
  order.deliver({ ev: 'end', host: 'web1', jobId: JOB, outcome: 'success', exitCode: 0, durationMs: 1 });
  for (let i = 0; i < 500 && !ended; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ended, 'the end came');
  assert.deepEqual(shown, Array.from({ length: FLOOD_LINES + 1 }, (_, i) => i + 1), 'every line once, in order: the ones let go read from the store');
});
