// Fan-out of job events to the admins watching them (CLI `trigger`, later the
// dashboard). Listeners are per job id, so output of one host never wakes the
// watchers of another.
import type { AdminEvent } from '../../common/protocol/admin.js';

export type JobEvent = Extract<AdminEvent, { ev: 'started' | 'output' | 'end' }>;
export type JobListener = (e: JobEvent) => void;

export class JobWatchers {
  private readonly byJob = new Map<string, Set<JobListener>>();
  private readonly everyJob = new Set<JobListener>();

  watch(jobId: string, fn: JobListener): () => void {
    let set = this.byJob.get(jobId);
    if (!set) this.byJob.set(jobId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.byJob.delete(jobId);
    };
  }

  /** Every job's events (dashboard, metrics); returns the unsubscribe function. */
  watchAll(fn: JobListener): () => void {
    this.everyJob.add(fn);
    return () => { this.everyJob.delete(fn); };
  }

  emit(jobId: string, e: JobEvent): void {
    for (const fn of this.everyJob) fn(e);
    const set = this.byJob.get(jobId);
    if (!set) return;
    for (const fn of set) fn(e);
  }
}
