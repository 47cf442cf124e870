// Durable job history: every job record lives in one group-committed journal
// (journal.ts, state/jobs/_journal.ndjson), plus an append-only output log per
// job (state/jobs/ID.log, created on its first line). Output lines are not
// fsynced one by one (that would put a disk flush on the streaming path); the
// job record, which is what "acknowledged" means, is.
import { unlink, mkdir } from 'node:fs/promises';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { Action, Outcome } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import { KeyedJournal, readJournal } from './journal.js';

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
}

const JOB_ID = /^[A-Za-z0-9_-]{8,64}$/;
/** One record per job, written by hubs before the journal (migrated at start). */
const LEGACY_FILE = /^([A-Za-z0-9_-]{8,64})\.json$/;
export const JOB_JOURNAL = '_journal.ndjson';

export class JobStore {
  private journal: KeyedJournal<JobRecord> | null = null;
  private readonly logs = new Map<string, WriteStream>();
  /** Finished job ids per host, oldest first: pruning is O(1) per job end, not a scan. */
  private readonly finished = new Map<string, string[]>();

  constructor(private readonly dir: string, private readonly history: number, private readonly log: Logger) {}

  private get j(): KeyedJournal<JobRecord> {
    if (!this.journal) throw new Error('JobStore used before load()');
    return this.journal;
  }

  /** Open the journal (hub start), migrate one-file-per-job records, build the per-host index. */
  async load(): Promise<JobRecord[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.journal = await KeyedJournal.open<JobRecord>({ file: path.join(this.dir, JOB_JOURNAL), log: this.log, accept: isJobRecord });
    await this.journal.importFiles(this.dir, (f) => LEGACY_FILE.exec(f)?.[1] ?? null);
    const byTime = [...this.j.map.values()].sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
    // Builds the per-host index; prunes now if jobHistory was lowered since the last run.
    await Promise.all(byTime.filter((rec) => FINAL_STATES.has(rec.state)).map((rec) => this.noteFinished(rec)));
    return byTime;
  }

  get(id: string): JobRecord | undefined {
    return this.journal?.get(id);
  }

  all(): JobRecord[] {
    return this.journal ? [...this.journal.map.values()] : [];
  }

  forHost(host: string): JobRecord[] {
    return this.all().filter((j) => j.host === host).sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }

  /**
   * Record a new or changed job. Readers see it at once; the promise resolves
   * once it is durable (group commit: many saves share one fdatasync).
   */
  save(rec: JobRecord): Promise<void> {
    const prev = this.j.get(rec.id);
    const durable = this.j.set(rec.id, rec);
    if (FINAL_STATES.has(rec.state) && !(prev && FINAL_STATES.has(prev.state))) {
      this.closeLog(rec.id);
      return Promise.all([durable, this.noteFinished(rec)]).then(() => undefined);
    }
    return durable;
  }

  /** Forget a record whose first write failed (nobody was told it exists). */
  discard(id: string): void {
    this.j.delete(id).catch(() => undefined); // a tombstone, or gone from the next rewrite
  }

  appendOutput(id: string, stream: 'stdout' | 'stderr', data: string): void {
    let ws = this.logs.get(id);
    if (!ws) {
      ws = createWriteStream(this.logPath(id), { flags: 'a', mode: 0o600 });
      ws.on('error', (err) => this.log.warn({ jobId: id, err: err.message }, 'job log write failed'));
      this.logs.set(id, ws);
    }
    ws.write(stream === 'stderr' ? `! ${data}\n` : `  ${data}\n`);
  }

  logPath(id: string): string {
    return path.join(this.dir, `${id}.log`);
  }

  /** Resolves once every save made so far is durable. */
  settled(): Promise<void> {
    return this.journal?.settled() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    await Promise.all([...this.logs.values()].map((ws) => new Promise<void>((r) => ws.end(r))));
    this.logs.clear();
    await this.journal?.close();
  }

  private closeLog(id: string): void {
    const ws = this.logs.get(id);
    if (ws) {
      ws.end();
      this.logs.delete(id);
    }
  }

  /** Keep the newest `history` finished jobs per host; drop the oldest beyond that. */
  private async noteFinished(rec: JobRecord): Promise<void> {
    let ids = this.finished.get(rec.host);
    if (!ids) this.finished.set(rec.host, (ids = []));
    if (ids.includes(rec.id)) return; // finished again (a late verdict after "interrupted"): same slot
    ids.push(rec.id);
    const drop = ids.length > this.history ? ids.splice(0, ids.length - this.history) : [];
    const work: Array<Promise<unknown>> = [];
    for (const id of drop) {
      if (this.j.get(id)?.host !== rec.host) continue;
      work.push(this.j.delete(id), unlink(this.logPath(id)).catch(() => undefined));
    }
    await Promise.all(work);
  }
}

function isJobRecord(key: string, v: unknown): v is JobRecord {
  const r = v as Partial<JobRecord> | null;
  return typeof r === 'object' && r !== null && r.id === key && JOB_ID.test(key)
    && typeof r.host === 'string' && typeof r.state === 'string' && typeof r.requestedAt === 'string';
}

/** The job records on disk, read without a hub (tests, offline tools). */
export async function readJobRecords(jobsDir: string): Promise<JobRecord[]> {
  return [...(await readJournal(path.join(jobsDir, JOB_JOURNAL), isJobRecord)).values()];
}
