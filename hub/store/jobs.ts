// Durable job history: one JSON file per job under state/jobs/, replaced
// atomically at every state change, plus an append-only output log per job.
// Output lines are not fsynced one by one (that would put a disk flush on the
// streaming path); the job record, which is what "acknowledged" means, is.
import { readdir, readFile, unlink, mkdir } from 'node:fs/promises';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../../common/platform/atomic.js';
import type { Action, Outcome } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';

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
}

const JOB_FILE = /^([A-Za-z0-9_-]{8,64})\.json$/;

export class JobStore {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly logs = new Map<string, WriteStream>();

  constructor(private readonly dir: string, private readonly history: number, private readonly log: Logger) {}

  /** Load every job record from disk (hub start). */
  async load(): Promise<JobRecord[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const f of await readdir(this.dir)) {
      const m = JOB_FILE.exec(f);
      if (!m) continue;
      try {
        const rec = JSON.parse(await readFile(path.join(this.dir, f), 'utf8')) as JobRecord;
        if (rec.id === m[1]) this.jobs.set(rec.id, rec);
      } catch (err) {
        this.log.warn({ file: f, err: (err as Error).message }, 'skipping unreadable job record');
      }
    }
    return [...this.jobs.values()];
  }

  get(id: string): JobRecord | undefined {
    return this.jobs.get(id);
  }

  all(): JobRecord[] {
    return [...this.jobs.values()];
  }

  forHost(host: string): JobRecord[] {
    return this.all().filter((j) => j.host === host).sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }

  /** Persist a new or changed record; resolves once it is durable. */
  async save(rec: JobRecord): Promise<void> {
    this.jobs.set(rec.id, rec);
    await writeJsonAtomic(path.join(this.dir, `${rec.id}.json`), rec, { mode: 0o600 });
    if (FINAL_STATES.has(rec.state)) {
      this.closeLog(rec.id);
      await this.prune(rec.host);
    }
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

  private closeLog(id: string): void {
    const ws = this.logs.get(id);
    if (ws) {
      ws.end();
      this.logs.delete(id);
    }
  }

  /** Keep the newest `history` finished jobs per host. */
  private async prune(host: string): Promise<void> {
    const finished = this.forHost(host).filter((j) => FINAL_STATES.has(j.state));
    const excess = finished.length - this.history;
    for (const j of finished.slice(0, Math.max(0, excess))) {
      this.jobs.delete(j.id);
      await unlink(path.join(this.dir, `${j.id}.json`)).catch(() => undefined);
      await unlink(this.logPath(j.id)).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.logs.values()].map((ws) => new Promise<void>((r) => ws.end(r))));
    this.logs.clear();
  }
}
