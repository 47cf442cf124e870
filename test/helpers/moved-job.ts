// A host that moves to another hub mid-job while the old holder's last batch
// of output is published on the bus but not stored yet (docs/cluster.md
// "Seqs reused when a host moves mid-job"), for the readers that follow such
// a job (follow-moved.test.ts: the admin's; dashboard-moved.test.ts: a
// dashboard page's). Real NatsJobOutputStores on a one-node nats-server (A,
// the old holder; C, the new one; B, where the reader is), and a
// LocalEventBus standing for what of A's and C's events reaches B. A's batch
// is held back by its own bulk-write gate (a busy hub's writes wait there),
// so it is stored after C's lines.
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import type { AdminEvent } from '../../common/protocol/admin.js';
import type { NatsJobOutputStore } from '../../hub/cluster/job-output.js';
import type { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import type { SlotGate } from '../../hub/cluster/slot-gate.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import type { JobBusEvent } from '../../hub/events/types.js';
import type { JobRecord } from '../../hub/store/jobs.js';
import { waitFor } from './proc.js';
import { natsForFile } from './nats-backends.js';

const log = silentLogger();

/** Take every bulk-write slot of A's hub: its output batches wait (published on the bus, not stored) until the release. */
async function holdWrites(backend: NatsStateBackend): Promise<() => void> {
  const gate = (backend as unknown as { gate: SlotGate }).gate; // the hub's own gate, private to its backend
  const slots = await Promise.all(Array.from({ length: gate.limit }, () => gate.acquire(1000)));
  return () => { for (const r of slots) r?.(); };
}

export const HOST = 'web1';
export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export const aLines = range(1, 10).map((s) => `a ${s}`);
export const cLines = range(1, 5).map((s) => `c ${s}`);

/** STORED (what `bento-hub job` shows) holds each line SHOWN once, each writer's in its order. */
export function sameLines(stored: string[], shown: string[]): void {
  const lines = shown.filter((l) => l.startsWith('a ') || l.startsWith('c '));
  assert.deepEqual([...stored].sort(), [...lines].sort(), 'the store and the follower have the same lines, each once');
  for (const p of ['a ', 'c ']) assert.deepEqual(stored.filter((l) => l.startsWith(p)), lines.filter((l) => l.startsWith(p)), `${p}lines in order`);
  assert.deepEqual(stored, [...aLines.slice(0, 7), ...cLines, ...aLines.slice(7)], 'A\'s last batch was stored after C\'s lines');
}

/** The three hubs' stores on a nats-server of the test file's own (PREFIX), and jobs moved among them. */
export async function movedJobs(prefix: string) {
  const nats = await natsForFile(prefix);
  const [a, b, c] = await Promise.all((await nats.openAll(['hub-a', 'hub-b', 'hub-c'])).map(async (backend) => ({ backend, out: await backend.openOutput() })));
  let jobs = 0;

  function world() {
    const id = `job-mv${String(++jobs).padStart(6, '0')}`;
    const bus = new LocalEventBus(log);
    const now = new Date().toISOString();
    const records = new Map<string, JobRecord>([[id, {
      id, host: HOST, action: 'switch', state: 'running', requestedAt: now, startedAt: now, endedAt: null, exitCode: null, durationMs: null, reason: null,
    }]]);
    const got: AdminEvent[] = [];
    const ended: string[] = [];
    const bJobs = { readOutput: (j: string, r?: { afterSeq?: number }) => b.out.read(j, r), get: (j: string) => records.get(j) };
    /** A line the hub HOLDER appends (its store numbers it) and the event it publishes, as hub/jobs/scheduler.ts does. */
    const line = (holder: NatsJobOutputStore, data: string): JobBusEvent => ({ ev: 'output', host: HOST, jobId: id, stream: 'stdout', data, ...holder.append(id, 'stdout', data) });
    const reach = (e: JobBusEvent): void => bus.publish({ kind: 'job', host: HOST, event: e });
    const stored = (n: number): Promise<unknown> => waitFor(`${n} lines stored`, async () => (await b.out.read(id)).length >= n, 10_000);
    const shown = (): string[] => got.map((e) => (e.ev === 'output' ? e.data : e.ev === 'skipped' ? `skipped ${e.lines}` : e.ev));
    return { id, bus, records, got, ended, bJobs, line, reach, stored, shown };
  }

  type World = ReturnType<typeof world>;

  /**
   * A writes lines 1..7 (stored) and 8..10 (published; stored only after C's),
   * the host moves to C, which resumes and writes 5 lines, then ends the job.
   * A's lines 8..10 reach B when AREACH. BETWEEN runs once A's first lines
   * are stored, HELD once C's are (A's last batch still held), BEFOREEND once
   * every line is. Returns the lines as stored (B's read).
   */
  async function moveMidJob(w: World, o: { aReach: boolean; between?: () => Promise<void>; held?: () => Promise<void>; beforeEnd?: () => Promise<void> }): Promise<string[]> {
    for (const s of range(1, 7)) w.reach(w.line(a.out, `a ${s}`));
    await w.stored(7);
    await o.between?.();
    const release = await holdWrites(a.backend);
    try {
      for (const s of range(8, 10)) {
        const e = w.line(a.out, `a ${s}`);
        if (o.aReach) w.reach(e);
      }
      await c.out.resume(w.id); // counts 7 stored lines: C's first line is seq 8 too
      let last: JobBusEvent | null = null;
      for (const s of range(1, 5)) w.reach(last = w.line(c.out, `c ${s}`));
      await w.stored(12);
      assert.equal(last?.ev === 'output' ? last.seq : null, 12, 'C numbers its lines from where the stored ones ended');
      await o.held?.();
      release();
      await w.stored(15);
      await o.beforeEnd?.();
      // C ends the job: its end says where its output ends, in its numbering (hub/jobs/end-event.ts).
      const writer = last?.ev === 'output' && 'w' in last ? { w: last.w as string } : {};
      w.reach({ ev: 'end', host: HOST, jobId: w.id, outcome: 'success', exitCode: 0, durationMs: 5, lines: 12, ...writer });
      w.records.set(w.id, { ...w.records.get(w.id)!, state: 'success', endedAt: new Date().toISOString(), exitCode: 0, durationMs: 5, output: { lines: 12, bytes: 96, ...writer } });
    } finally {
      release();
    }
    return (await b.out.read(w.id)).map((l) => l.data);
  }

  return { a, b, c, world, moveMidJob };
}

export type MovedWorld = ReturnType<Awaited<ReturnType<typeof movedJobs>>['world']>;
