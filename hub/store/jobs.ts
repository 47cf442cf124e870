// Durable job history over the state seam (types.ts): job records in the
// keyed store "jobs", output in the JobOutputStore. Backend-agnostic: the
// embedded hub gives it files (file-backend.ts), unit tests memory, a
// cluster NATS JetStream. Output lines are best effort; the job record,
// which is what "acknowledged" means, resolves only once durable. Output is
// capped here, above the backend (output-cap.ts): per job (head and tail kept,
// the middle cut) and per host (the oldest finished jobs' output dropped).
import type { Action, Outcome } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import { isJobId } from '../../common/protocol/names.js';
import type { JobOutputStore, KeyedStore, StateBackend } from './types.js';
import { OUTPUT_DEFAULTS, OutputCap, type JobOutputLine, type OutputCapStats, type OutputLimits, type OutputSummary } from './output-cap.js';

export type JobState = 'queued' | 'dispatched' | 'running' | Outcome;
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['success', 'failure', 'interrupted', 'rolled-back']);

export interface JobRecord {
  id: string;
  host: string;
  action: Action;
  state: JobState;
  requestedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  exitCode: number | null;
  durationMs: number | null;
  reason: string | null;
  /** trigger --prebuilt: the system store path the agent switches to instead of rebuilding (and the config hash it was built from). */
  storePath?: string;
  configHash?: string;
  /** The host's own health check after a switch/test (agent setting healthCommand; job.end health), when it has one. */
  health?: 'passed' | 'failed';
  /** Its stored output: size, cuts (over limits.jobOutputBytes), dropped (the host's limits.hostOutputBytes); set when it ends. */
  output?: OutputSummary;
}

/** The keyed store job records live in. */
export const JOBS_STORE = 'jobs';

export interface JobStoreOptions {
  records: KeyedStore<JobRecord>;
  output: JobOutputStore;
  /** Finished jobs kept per host. */
  history: number;
  /** Caps on stored output (hub.json limits); default OUTPUT_DEFAULTS. */
  limits?: OutputLimits;
  log: Logger;
}

export class JobStore {
  /** Finished job ids per host, oldest first: pruning is O(1) per job end, not a scan. */
  private readonly finished = new Map<string, string[]>();
  private readonly cap: OutputCap;
  private readonly limits: OutputLimits;

  constructor(private readonly o: JobStoreOptions) {
    this.limits = o.limits ?? OUTPUT_DEFAULTS;
    this.cap = new OutputCap(o.output, this.limits);
  }

  /** Open the job records and output of a backend and build the per-host index. */
  static async open(backend: StateBackend, o: { history: number; limits?: OutputLimits; log: Logger }): Promise<JobStore> {
    const records = await backend.openKeyed<JobRecord>(JOBS_STORE, { accept: isJobRecord });
    const store = new JobStore({ records, output: await backend.openOutput(), ...o });
    await store.load();
    return store;
  }

  /** Build the per-host index (prunes now if the history was lowered since the last run); returns the records by request time. */
  async load(): Promise<JobRecord[]> {
    const byTime = this.all().sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
    await Promise.all(byTime.filter((rec) => FINAL_STATES.has(rec.state)).map((rec) => this.noteFinished(rec)));
    return byTime;
  }

  get(id: string): JobRecord | undefined {
    return this.o.records.get(id);
  }

  all(): JobRecord[] {
    return [...this.o.records.values()];
  }

  forHost(host: string): JobRecord[] {
    return this.all().filter((j) => j.host === host).sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }

  /**
   * Record a new or changed job. Readers see it at once; the promise resolves
   * once it is durable (file backend: group commit, many saves share one fdatasync).
   */
  save(rec: JobRecord): Promise<void> {
    const prev = this.o.records.get(rec.id);
    const ending = FINAL_STATES.has(rec.state) && !(prev && FINAL_STATES.has(prev.state));
    // What the output store holds is ours to say: a caller's copy of the record may predate it.
    const output = (ending ? this.cap.finish(rec.id) : undefined) ?? prev?.output;
    if (output) rec = { ...rec, output };
    const durable = this.o.records.set(rec.id, rec).then(() => undefined);
    if (ending) {
      this.o.output.end(rec.id).catch((err: Error) => this.o.log.warn({ jobId: rec.id, err: err.message }, 'cannot close the job output'));
      return Promise.all([durable, this.noteFinished(rec)]).then(() => undefined);
    }
    return durable;
  }

  /** Forget a record whose first write failed (nobody was told it exists). */
  discard(id: string): void {
    this.cap.forget(id);
    this.o.records.delete(id).catch(() => undefined); // a tombstone, or gone from the next rewrite
  }

  /** One output line of a running job; returns its seq (1, 2, 3, ... per job; past a cut, numbered past the gap). */
  appendOutput(id: string, stream: 'stdout' | 'stderr', data: string): number {
    return this.cap.append(id, this.o.records.get(id)?.output, stream, data);
  }

  /** A job's output after a seq: stored lines, a cut's marker flagged (`trimmed`), and a running job's tail. */
  readOutput(id: string, opts: { afterSeq?: number; limitBytes?: number } = {}): Promise<JobOutputLine[]> {
    return this.cap.read(id, this.o.records.get(id)?.output, opts);
  }

  /** What the output caps did (metrics). */
  get outputStats(): OutputCapStats {
    return this.cap.stats;
  }

  /** Resolves once every save made so far is durable. */
  settled(): Promise<void> {
    return this.o.records.settled();
  }

  async close(): Promise<void> {
    // Running jobs' tails go to the store now, and their records say where the output stands (the job may go on after a restart).
    const flushed: Array<Promise<unknown>> = [];
    for (const id of this.cap.openJobs()) {
      const rec = this.o.records.get(id);
      const output = this.cap.finish(id);
      if (rec && output) flushed.push(this.o.records.set(id, { ...rec, output }).catch(() => undefined));
    }
    await Promise.all(flushed);
    await this.o.output.close();
    await this.o.records.close();
  }

  /** Keep the newest `history` finished jobs per host; drop the oldest beyond that. */
  private async noteFinished(rec: JobRecord): Promise<void> {
    let ids = this.finished.get(rec.host);
    if (!ids) this.finished.set(rec.host, (ids = []));
    if (ids.includes(rec.id)) return; // finished again (a late verdict after "interrupted"): same slot
    ids.push(rec.id);
    const drop = ids.length > this.o.history ? ids.splice(0, ids.length - this.o.history) : [];
    const work: Array<Promise<unknown>> = [];
    for (const id of drop) {
      if (this.o.records.get(id)?.host !== rec.host) continue;
      work.push(this.o.records.delete(id), this.o.output.remove(id).catch(() => undefined));
    }
    work.push(...this.keepHostTotal(rec.host, ids));
    await Promise.all(work);
  }

  /**
   * limits.hostOutputBytes: the stored output of a host's finished jobs
   * together. Over it, the oldest jobs' output is dropped whole (their
   * records stay, saying so), never the newest job's.
   */
  private keepHostTotal(host: string, ids: string[]): Array<Promise<unknown>> {
    let total = 0;
    for (const id of ids) total += this.storedBytes(id);
    const work: Array<Promise<unknown>> = [];
    for (let i = 0; i < ids.length - 1 && total > this.limits.hostOutputBytes; i++) {
      const id = ids[i]!;
      const rec = this.o.records.get(id);
      const bytes = this.storedBytes(id);
      if (!rec || rec.host !== host || bytes === 0) continue;
      total -= bytes;
      this.cap.stats.droppedJobs++;
      this.cap.stats.droppedBytes += bytes;
      this.o.log.info({ host, jobId: id, bytes }, 'dropped the stored output of an old job: the host\'s jobs are over limits.hostOutputBytes');
      work.push(
        this.o.output.remove(id).catch(() => undefined),
        this.o.records.set(id, { ...rec, output: { ...rec.output!, dropped: true } }).catch(() => undefined),
      );
    }
    return work;
  }

  private storedBytes(id: string): number {
    const o = this.o.records.get(id)?.output;
    return o && !o.dropped ? o.bytes : 0;
  }
}

export function isJobRecord(key: string, v: unknown): v is JobRecord {
  const r = v as Partial<JobRecord> | null;
  return typeof r === 'object' && r !== null && r.id === key && isJobId(key)
    && typeof r.host === 'string' && typeof r.state === 'string' && typeof r.requestedAt === 'string';
}

/** The job records of a backend, read without a hub (tests, offline tools): give it a read-only backend. */
export async function readJobRecords(backend: StateBackend): Promise<JobRecord[]> {
  const s = await backend.openKeyed<JobRecord>(JOBS_STORE, { accept: isJobRecord });
  try {
    return [...s.values()];
  } finally {
    await s.close();
  }
}
