// An admin at hub B follows a job that runs at hub A (docs/cluster.md "The
// admin at B follows the job on the shared bus"), with what a review found
// lost or stuck: the real NatsJobOutputStore on a one-node nats-server (A
// writes, B reads: B sees only what A stored), the real JobFollower and
// jobOp, and a LocalEventBus standing for what of A's events reaches B (core
// NATS is at most once, so the test drops some). Each test failed before its
// fix:
//   - an end the bus lost held `trigger --wait` and `job --follow` forever;
//   - events kept before the trigger's answer grew without a bound;
//   - lines lost just before the end were never filled;
//   - a gap read before A stored its lines moved on without them, silently;
//   - an end told twice (A, and a replay at another hub) was shown and counted twice;
//   - the end on the bus did not say where the output ends.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import type { AdminEvent } from '../../common/protocol/admin.js';
import { JobFollower } from '../../hub/admin/follow.js';
import { jobOp } from '../../hub/admin/job-op.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import type { JobBusEvent } from '../../hub/events/types.js';
import { JobEnds } from '../../hub/jobs/job-end.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { waitFor } from '../helpers/proc.js';
import { natsForFile } from '../helpers/nats-backends.js';

const log = silentLogger();
const nats = await natsForFile('follow');
const [hubA, hubB] = await Promise.all((await nats.openAll(['hub-a', 'hub-b'])).map((b) => b.openOutput()));

let jobs = 0;
const HOST = 'web1';
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const record = (id: string, over: Partial<JobRecord> = {}): JobRecord => ({
  id, host: HOST, action: 'switch', state: 'running', requestedAt: new Date().toISOString(), startedAt: new Date().toISOString(),
  endedAt: null, exitCode: null, durationMs: null, reason: null, ...over,
});
const success = (id: string, lines: number): JobRecord => record(id, { state: 'success', endedAt: new Date().toISOString(), exitCode: 0, durationMs: 5, output: { lines, bytes: lines * 8 } });

/** One job at A, followed at B: A's lines (stored by A, maybe later), what of A's events reaches B, and B's record view. */
function world(o: { checkMs?: number; fillWaitMs?: number } = {}) {
  const id = `job-fr${String(++jobs).padStart(6, '0')}`;
  const bus = new LocalEventBus(log);
  const records = new Map<string, JobRecord>([[id, record(id)]]);
  const got: AdminEvent[] = [];
  const ended: string[] = [];
  const bJobs = { readOutput: (j: string, r?: { afterSeq?: number }) => hubB.read(j, r), get: (j: string) => records.get(j) };
  const follower = new JobFollower({ bus, jobs: bJobs, reply: (e) => got.push(e), log, ended: (j) => ended.push(j), checkMs: o.checkMs ?? 100, fillWaitMs: o.fillWaitMs ?? 3000 }, new Set([HOST]));
  /** A appends line SEQ (stored shortly after, batch by batch) and returns its bus event (with the tag of A's writer, w, as the hub publishes it). */
  const line = (seq: number): JobBusEvent => {
    const given = hubA.append(id, 'stdout', `line ${seq}`);
    assert.equal(given.seq, seq);
    return { ev: 'output', host: HOST, jobId: id, stream: 'stdout', data: `line ${seq}`, ...given };
  };
  const reach = (e: JobBusEvent): void => bus.publish({ kind: 'job', host: HOST, event: e });
  const end = (lines?: number): JobBusEvent => ({ ev: 'end', host: HOST, jobId: id, outcome: 'success', exitCode: 0, durationMs: 5, ...(lines !== undefined ? { lines } : {}) });
  const shown = (): string[] => got.map((e) => (e.ev === 'output' ? e.data : e.ev === 'skipped' ? `skipped ${e.lines}` : e.ev));
  return { id, bus, records, got, ended, bJobs, follower, line, reach, end, shown };
}

test('#4 trigger --wait: an end the bus lost is found in the record; the lines stored since are filled first', async () => {
  const w = world();
  w.follower.start();
  w.follower.expect(HOST);
  w.follower.follow(HOST, w.id);
  w.reach({ ev: 'started', host: HOST, jobId: w.id });
  for (const s of range(1, 3)) w.reach(w.line(s));
  for (const s of range(4, 5)) w.line(s); // lost on the bus, with the end
  await hubA.end(w.id);
  w.records.set(w.id, success(w.id, 5));
  await waitFor('the end', () => w.ended.length > 0, 5000);
  w.follower.close();
  assert.deepEqual(w.shown(), ['started', ...range(1, 5).map((s) => `line ${s}`), 'end']);
  const end = w.got.at(-1)!;
  assert.ok(end.ev === 'end' && end.outcome === 'success' && !('lines' in end), 'the end as the admin protocol has it');
});

test('#4 job --follow: an end the bus lost is found in the record; the op ends after a last fill', async () => {
  const w = world();
  for (const s of range(1, 2)) w.line(s);
  await waitFor('2 lines stored', async () => (await hubB.read(w.id)).length >= 2, 5000); // A's writer goes on
  const sock = new EventEmitter() as unknown as net.Socket;
  const op = jobOp({ jobs: w.bJobs, bus: w.bus, log, checkMs: 100 }, { op: 'job', jobId: w.id, follow: true }, (e) => w.got.push(e), sock);
  await waitFor('the stored lines', () => w.got.length >= 3, 5000);
  w.reach(w.line(3));
  w.line(4); // lost on the bus, with the end
  await hubA.end(w.id);
  w.records.set(w.id, success(w.id, 4));
  const done = await Promise.race([op.then(() => 'done'), new Promise((r) => setTimeout(() => r('still following'), 5000))]);
  sock.emit('close');
  assert.equal(done, 'done');
  assert.deepEqual(w.shown(), ['job', ...range(1, 4).map((s) => `line ${s}`), 'end', 'done']);
});

test('#5 events kept before the trigger\'s answer are bounded; dropped lines come from the store, started stays', async () => {
  const w = world();
  w.follower.start();
  w.follower.expect(HOST);
  w.reach({ ev: 'started', host: HOST, jobId: w.id });
  const n = 12_000;
  for (const s of range(1, n)) w.reach(w.line(s));
  assert.ok(w.follower.keptFor(HOST) <= 10_000, `kept ${w.follower.keptFor(HOST)} events`);
  w.follower.follow(HOST, w.id);
  w.reach(w.end(n));
  await waitFor('the end', () => w.ended.length > 0, 10_000);
  w.follower.close();
  assert.deepEqual(w.shown(), ['started', ...range(1, n).map((s) => `line ${s}`), 'end']);
});

test('#2 lines lost just before the end (not stored yet either) are filled before the end', async () => {
  const w = world();
  w.follower.start();
  w.follower.expect(HOST);
  w.follower.follow(HOST, w.id);
  for (const s of range(1, 8)) w.reach(w.line(s));
  for (const s of range(9, 10)) w.line(s); // lost on the bus; A stores them a moment later
  w.reach(w.end(10));
  await waitFor('the end', () => w.ended.length > 0, 5000);
  w.follower.close();
  assert.deepEqual(w.shown(), [...range(1, 10).map((s) => `line ${s}`), 'end']);
});

test('#1 a gap read before A stored the missing line waits for it; one never stored is announced, then skipped', async () => {
  const w = world({ fillWaitMs: 800 });
  w.follower.start();
  w.follower.expect(HOST);
  w.follower.follow(HOST, w.id);
  await hubA.resume(w.id); // A's writer exists before it stores anything: its lines go out on the bus with its tag
  const writer = { w: hubA.writerTag(w.id)! };
  const events = range(1, 5).map((s) => ({ ev: 'output', host: HOST, jobId: w.id, seq: s, ts: s, stream: 'stdout', data: `line ${s}`, ...writer }) as JobBusEvent);
  for (const e of events) if (e.ev === 'output' && e.seq !== 3) w.reach(e); // line 3 lost on the bus
  setTimeout(() => { for (const s of range(1, 5)) w.line(s); }, 300); // A stores the lines after B read the gap
  await waitFor('line 5', () => w.shown().includes('line 5'), 5000);
  assert.deepEqual(w.shown(), range(1, 5).map((s) => `line ${s}`));
  // Line 7 is neither on the bus nor ever stored (A stores only up to 6): the admin is told, and line 8 follows.
  w.reach(w.line(6));
  w.reach({ ev: 'output', host: HOST, jobId: w.id, seq: 8, ts: 8, stream: 'stdout', data: 'line 8', ...writer });
  w.reach(w.end(8));
  await waitFor('the end', () => w.ended.length > 0, 5000);
  w.follower.close();
  assert.deepEqual(w.shown(), [...range(1, 6).map((s) => `line ${s}`), 'skipped 1', 'line 8', 'end']);
  const skipped = w.got.find((e) => e.ev === 'skipped');
  assert.match(skipped?.ev === 'skipped' ? skipped.message : '', new RegExp(`1 lines of ${HOST}'s output did not reach this hub.*bento-hub job ${w.id}`));
});

test('#7 an end told twice (A, then a replay at another hub) is shown and counted once', async () => {
  const w = world();
  w.follower.start();
  w.follower.expect(HOST);
  w.follower.follow(HOST, w.id);
  w.reach(w.line(1));
  w.reach(w.end(1));
  w.reach(w.end(1));
  await hubA.end(w.id);
  w.records.set(w.id, success(w.id, 1)); // and the record, checked meanwhile
  await new Promise((r) => setTimeout(r, 300));
  w.follower.close();
  assert.deepEqual(w.shown(), ['line 1', 'end']);
  assert.deepEqual(w.ended, [w.id]);
});

test('the end a hub publishes says where the job\'s output ends', async () => {
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log });
  const bus = new LocalEventBus(log);
  const ends: JobBusEvent[] = [];
  bus.subscribe({ all: true }, (e) => { if (e.kind === 'job' && e.event.ev === 'end') ends.push(e.event); });
  const jobEnds = new JobEnds({
    store, bus, log, adopter: { adopt: async () => undefined } as never, active: new Map(), settled: () => undefined,
    dispatchPending: async () => undefined, later: () => undefined,
  });
  try {
    const rec = record('job-frlines1');
    await store.save(rec);
    for (const s of range(1, 3)) store.appendOutput(rec.id, 'stdout', `line ${s}`);
    await jobEnds.finishWith({ ...rec, state: 'success', endedAt: new Date().toISOString(), exitCode: 0, durationMs: 5 });
    assert.equal(ends.length, 1);
    assert.equal(ends[0]!.ev === 'end' ? ends[0]!.lines : null, 3);
  } finally {
    await store.close();
  }
});
