// Durable job history over the state seam (types.ts): job records in the
// keyed store "jobs", output in the JobOutputStore. Backend-agnostic: the
// embedded hub gives it files (file-backend.ts), unit tests memory, a
// cluster NATS JetStream. Output lines are best effort; the job record,
// which is what "acknowledged" means, resolves only once durable.
import type { Action, Outcome } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import { isJobId } from '../../common/protocol/names.js';
import type { JobOutputStore, KeyedStore, OutputLine, StateBackend } from './types.js';

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
  /**
   * What the host ran when the job was dispatched to it (or, for a job the
   * host started itself, when the hub heard of it): its hello, kept current
   * by every job.end. Absent in records written before hubs kept it.
   */
  systemBefore?: string | null;
  generationBefore?: number | null;
  /** What it ran after the job, from job.end (generation: agents that send it). Absent for the hub's own verdicts. */
  systemAfter?: string | null;
  generationAfter?: number | null;
  /** The host's own health check after a switch/test (agent setting healthCommand; job.end health), when it has one. */
  health?: 'passed' | 'failed';
}

/** The keyed store job records live in. */
export const JOBS_STORE = 'jobs';

export interface JobStoreOptions {
  records: KeyedStore<JobRecord>;
  output: JobOutputStore;
  /** Finished jobs kept per host. */
  history: number;
  log: Logger;
}

export class JobStore {
  /** Finished job ids per host, oldest first: pruning is O(1) per job end, not a scan. */
  private readonly finished = new Map<string, string[]>();

  constructor(private readonly o: JobStoreOptions) {}

  /** Open the job records and output of a backend and build the per-host index. */
  static async open(backend: StateBackend, o: { history: number; log: Logger }): Promise<JobStore> {
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
    const durable = this.o.records.set(rec.id, rec).then(() => undefined);
    if (FINAL_STATES.has(rec.state) && !(prev && FINAL_STATES.has(prev.state))) {
      this.o.output.end(rec.id).catch((err: Error) => this.o.log.warn({ jobId: rec.id, err: err.message }, 'cannot close the job output'));
      return Promise.all([durable, this.noteFinished(rec)]).then(() => undefined);
    }
    return durable;
  }

  /** Forget a record whose first write failed (nobody was told it exists). */
  discard(id: string): void {
    this.o.records.delete(id).catch(() => undefined); // a tombstone, or gone from the next rewrite
  }

  /** One output line of a job; returns its seq (1, 2, 3, ... per job) and when it was stored. */
  appendOutput(id: string, stream: OutputLine['stream'], data: string): { seq: number; ts: number } {
    return this.o.output.append(id, stream, data);
  }

  /** A job's stored output (what the dashboard shows of a job that is not in its memory). */
  readOutput(id: string, opts?: { afterSeq?: number; limitBytes?: number }): Promise<OutputLine[]> {
    return this.o.output.read(id, opts);
  }

  /** Resolves once every save made so far is durable. */
  settled(): Promise<void> {
    return this.o.records.settled();
  }

  async close(): Promise<void> {
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
    await Promise.all(work);
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
