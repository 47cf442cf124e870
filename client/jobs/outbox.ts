// Results the hub has not acknowledged yet, one file per job, so a result
// survives a dropped connection, an agent restart and a reboot. A marker file
// records the job in progress: if the agent dies mid-job, the next start turns
// it into an "interrupted" result instead of leaving the hub waiting forever.
import { readdir, readFile, unlink, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeJsonAtomic } from '../../common/platform/atomic.js';
import type { Action, JobEnd } from '../../common/protocol/messages.js';
import { JOB_ID_RE as ID } from '../../common/protocol/names.js';

export interface CurrentJob { jobId: string; action: Action; startedAt: string; pid: number }

export class Outbox {
  private readonly dir: string;
  private readonly marker: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'outbox');
    this.marker = path.join(stateDir, 'current-job.json');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async put(end: JobEnd): Promise<void> {
    if (!ID.test(end.jobId)) return;
    await writeJsonAtomic(path.join(this.dir, `${end.jobId}.json`), end, { mode: 0o600 });
  }

  async remove(jobId: string): Promise<void> {
    if (!ID.test(jobId)) return;
    await unlink(path.join(this.dir, `${jobId}.json`)).catch(() => undefined);
  }

  async list(): Promise<JobEnd[]> {
    const out: JobEnd[] = [];
    for (const f of (await readdir(this.dir)).sort()) {
      if (!f.endsWith('.json') || !ID.test(f.slice(0, -5))) continue;
      try {
        out.push(JSON.parse(await readFile(path.join(this.dir, f), 'utf8')) as JobEnd);
      } catch { /* atomic writes make torn files impossible; skip anything foreign */ }
    }
    return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  async markRunning(job: CurrentJob): Promise<void> {
    await writeJsonAtomic(this.marker, job, { mode: 0o600 });
  }

  async clearRunning(): Promise<void> {
    await unlink(this.marker).catch(() => undefined);
  }

  async readRunning(): Promise<CurrentJob | null> {
    try {
      return JSON.parse(await readFile(this.marker, 'utf8')) as CurrentJob;
    } catch {
      return null;
    }
  }
}
