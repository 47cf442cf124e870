// Following triggered jobs on the bus (hub/admin/follow.ts): events that come
// before the trigger's answer are kept and replayed once it names the job;
// other jobs of the host are not shown; a repeated line is dropped and a gap
// is filled from the stored output, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import type { AdminEvent } from '../../common/protocol/admin.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import type { JobBusEvent } from '../../hub/events/types.js';
import { JobFollower } from '../../hub/admin/follow.js';
import type { OutputLine } from '../../hub/store/types.js';

const out = (jobId: string, seq: number, data: string): JobBusEvent => ({ ev: 'output', host: 'web1', jobId, seq, ts: seq, stream: 'stdout', data });

test('early events are kept until the answer, gaps are filled from the stored output, repeats dropped', async () => {
  const bus = new LocalEventBus(silentLogger());
  const got: AdminEvent[] = [];
  const ended: string[] = [];
  const stored: OutputLine[] = [1, 2, 3, 4, 5].map((seq) => ({ seq, ts: seq, stream: 'stdout', data: `line ${seq}` }));
  const f = new JobFollower({
    bus, reply: (e) => got.push(e), log: silentLogger(), ended: (id) => ended.push(id),
    jobs: { readOutput: async (_id, o) => stored.filter((l) => l.seq > (o?.afterSeq ?? 0)) },
  }, new Set(['web1']));
  f.start();
  f.expect('web1');
  const pub = (e: JobBusEvent): void => bus.publish({ kind: 'job', host: 'web1', event: e });
  pub({ ev: 'started', host: 'web1', jobId: 'job-mine0001' });
  pub(out('job-other001', 1, 'another job of the host'));
  pub(out('job-mine0001', 1, 'line 1'));
  f.follow('web1', 'job-mine0001');
  pub(out('job-mine0001', 1, 'line 1'));
  pub(out('job-mine0001', 4, 'line 4'));
  pub(out('job-mine0001', 5, 'line 5'));
  pub({ ev: 'end', host: 'web1', jobId: 'job-mine0001', outcome: 'success', exitCode: 0, durationMs: 5 });
  await new Promise((r) => setTimeout(r, 20));
  f.close();
  assert.deepEqual(got.map((e) => (e.ev === 'output' ? e.data : e.ev)), ['started', 'line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'end']);
  assert.deepEqual(ended, ['job-mine0001']);
});

test('a followed job\'s events reach the reply in the bus\'s own turn; behind a gap being filled, they wait for it, in order', async () => {
  const bus = new LocalEventBus(silentLogger());
  const got: string[] = [];
  let release: () => void = () => undefined;
  const stored: OutputLine[] = [1, 2].map((seq) => ({ seq, ts: seq, stream: 'stdout', data: `line ${seq}` }));
  const f = new JobFollower({
    bus, reply: (e) => got.push(e.ev === 'output' ? e.data : e.ev), log: silentLogger(), ended: () => undefined,
    // The stored output answers only when the test says so.
    jobs: { readOutput: (_id, o) => new Promise((resolve) => { release = () => resolve(stored.filter((l) => l.seq > (o?.afterSeq ?? 0))); }) },
  }, new Set(['web1', 'web2']));
  f.start();
  f.expect('web1');
  f.follow('web1', 'job-mine0001');
  const pub = (e: JobBusEvent): void => bus.publish({ kind: 'job', host: 'web1', event: e });
  // A fan-out's started and end events: shown before publish() returns (before, each waited for a
  // promise of its own, two per event, a microtask later).
  pub({ ev: 'started', host: 'web1', jobId: 'job-mine0001' });
  assert.deepEqual(got, ['started']);
  // A gap (lines 1 and 2 only in the store): line 3 and everything after it wait for the fill.
  pub(out('job-mine0001', 3, 'line 3'));
  pub({ ev: 'end', host: 'web1', jobId: 'job-mine0001', outcome: 'success', exitCode: 0, durationMs: 5 });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['started']);
  release();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(got, ['started', 'line 1', 'line 2', 'line 3', 'end']);
  f.close();
});

test('a job whose host moved mid-job: two writers\' lines under the same seqs are each shown once; the old one\'s stored late, before the end', async () => {
  const bus = new LocalEventBus(silentLogger());
  const got: string[] = [];
  // Stored order (the place is the stored seq): A's 1..3, C's 4..5 (C resumed after 3 stored lines), A's 4 and 5 (stored late).
  const stored: OutputLine[] = [['A', 1], ['A', 2], ['A', 3], ['C', 4], ['C', 5], ['A', 4], ['A', 5]]
    .map(([w, ws], i) => ({ seq: i + 1, ts: i, stream: 'stdout', data: `${w} ${ws}`, w: w as string, ws: ws as number }));
  const f = new JobFollower({
    bus, reply: (e) => got.push(e.ev === 'output' ? e.data : e.ev), log: silentLogger(), ended: () => undefined, fillWaitMs: 200,
    jobs: { readOutput: async (_id, o) => stored.filter((l) => l.seq > (o?.afterSeq ?? 0)) },
  }, new Set(['web1']));
  f.start();
  f.expect('web1');
  f.follow('web1', 'job-mine0001');
  const pub = (e: JobBusEvent): void => bus.publish({ kind: 'job', host: 'web1', event: e });
  const line = (w: string, seq: number): JobBusEvent => ({ ...out('job-mine0001', seq, `${w} ${seq}`), w } as JobBusEvent);
  for (const s of [1, 2, 3, 4]) pub(line('A', s)); // A's 5 is lost on the bus
  for (const s of [4, 5]) pub(line('C', s));
  pub({ ev: 'end', host: 'web1', jobId: 'job-mine0001', outcome: 'success', exitCode: 0, durationMs: 5, lines: 5, w: 'C' } as JobBusEvent);
  await new Promise((r) => setTimeout(r, 50));
  f.close();
  assert.deepEqual(got, ['A 1', 'A 2', 'A 3', 'A 4', 'C 4', 'C 5', 'A 5', 'end']);
});
