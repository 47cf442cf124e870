// Jobs the hub has no record of, reported by the host that ran them: one the
// agent started itself (AGENT_JOB_ID: its local page, `bento-client upgrade`,
// a pull's autoApply), or one the hub sent just before it died, before the
// record reached the disk (or NATS: a cluster hub holds a job's dispatched
// record back for a moment, store/job-writes.ts EVENTUAL_HOLD_MS). Either
// way the host's word is recorded, so nothing it ran is missing from
// history, status, the dashboard or the metrics.
import type { Action } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import { FINAL_STATES, type JobRecord, type JobStore } from '../store/jobs.js';
import { AGENT_JOB_ID, newJob } from './job-ids.js';
import type { AdoptionLimiter } from './adopt-limits.js';

export interface AdoptDeps {
  store: JobStore;
  log: Logger;
  /** The scheduler's active job per host: an adopted job becomes it when there is none. */
  active: Map<string, string>;
  interrupt(rec: JobRecord, reason: string): Promise<void>;
  /** How many jobs one host may have recorded on its word (adopt-limits.ts); absent: no limit. */
  limiter?: AdoptionLimiter;
}

export class Adopter {
  /** The last agent-initiated job per host: at most one such open record per host. */
  private readonly localJobs = new Map<string, string>();

  constructor(private readonly d: AdoptDeps) {}

  /** Record the job (`open`: it has not ended yet); undefined when the host is over its adoption limits. */
  async adopt(host: string, jobId: string, action: Action, startedAt: string | null, open: boolean): Promise<JobRecord | undefined> {
    if (this.d.limiter && !this.d.limiter.admit(host, jobId, open)) return undefined;
    const rec = adoptedRecord(host, jobId, action, startedAt);
    if (!AGENT_JOB_ID.test(jobId)) {
      await this.d.store.save(rec);
      this.d.log.warn({ host, jobId, action }, 'the agent reports a job the hub has no record of (the hub that sent it stopped before writing it); recording it');
      return rec;
    }
    const prevId = this.localJobs.get(host);
    const prev = prevId ? this.d.store.get(prevId) : undefined;
    if (prev && prev.host === host && !FINAL_STATES.has(prev.state)) {
      await this.d.interrupt(prev, 'the agent started another job before reporting this one');
      if (this.d.active.get(host) === prev.id) this.d.active.delete(host);
    }
    await this.d.store.save(rec);
    this.localJobs.set(host, jobId);
    if (!this.d.active.has(host)) this.d.active.set(host, jobId);
    this.d.log.info({ host, jobId, action }, 'recording a job the agent started itself');
    return rec;
  }
}

/** The record of a job the host reports and the hub has no record of (before its end, if it has one). */
export function adoptedRecord(host: string, jobId: string, action: Action, startedAt: string | null): JobRecord {
  return { ...newJob(host, action), id: jobId, state: 'dispatched', startedAt };
}
