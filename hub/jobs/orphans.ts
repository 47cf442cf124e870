// A cluster's orphans: jobs another hub dispatched, for hosts no live hub
// holds (that hub died, and the agent has not come back anywhere). They are
// interrupted once they were so for the grace, by one hub only
// (holders.settlesOrphans: the live hub with the smallest name), as a
// restarted single hub does with its own jobs (recovery.ts). A result the
// agent reports later still wins. A single hub's records carry no stamp and
// are never this sweep's.
import type { Logger } from '../../common/platform/log.js';
import type { HostHolders } from '../holders/types.js';
import type { JobStore } from '../store/jobs.js';

export interface OrphanDeps {
  store: Pick<JobStore, 'hostsWithOpenJobs' | 'openFor'>;
  holders: Pick<HostHolders, 'hubName' | 'holder' | 'settlesOrphans' | 'hubAlive'>;
  sessions: { get(host: string): unknown };
  /** Interrupt job ID of HOST with REASON (if it is still open and its host still nowhere). */
  settle(host: string, id: string, reason: string): Promise<void>;
  log: Logger;
}

export class OrphanSweep {
  /** Orphaned job id -> since when (ms). */
  private readonly since = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly d: OrphanDeps) {}

  start(graceMs: number, everyMs = Math.min(10_000, graceMs)): void {
    this.timer = setInterval(() => this.sweep(graceMs), everyMs);
    this.timer.unref();
  }

  sweep(graceMs: number, now = Date.now()): void {
    const { store, holders, sessions } = this.d;
    const seen = new Set<string>();
    const mine = holders.settlesOrphans();
    for (const host of store.hostsWithOpenJobs()) {
      if (holders.holder(host) || sessions.get(host)) continue;
      for (const rec of store.openFor(host)) {
        // A live hub's records are its own to settle: one that still keeps a guarded switch open after
        // the connection dropped (rollbackTimeoutMs may be minutes) must not read "interrupted" here.
        if (rec.state === 'queued' || rec.hub === undefined || rec.hub === holders.hubName || holders.hubAlive(rec.hub)) continue;
        seen.add(rec.id);
        const since = this.since.get(rec.id) ?? now;
        this.since.set(rec.id, since);
        if (!mine || now - since < graceMs) continue;
        this.since.delete(rec.id);
        const reason = `the hub that ran it (${rec.hub}) stopped, and the agent has not reconnected to any hub; it reports the result if it comes back`;
        this.d.settle(host, rec.id, reason).catch((err: Error) => this.d.log.warn({ host, jobId: rec.id, err: err.message }, 'cannot settle a job a dead hub left open'));
      }
    }
    for (const id of this.since.keys()) if (!seen.has(id)) this.since.delete(id);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
