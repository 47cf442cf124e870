// A cluster's orphans: open jobs of hosts no live hub holds and whose agent
// has not come back anywhere. They are interrupted once they were so for the
// grace, as a restarted single hub does with its own jobs (recovery.ts); a
// result the agent reports later still wins. Two kinds:
// - another hub's, and that hub is dead: settled by one hub only
//   (holders.settlesOrphans: the live hub with the smallest name);
// - this hub's own, which it no longer tracks as the host's active job (so
//   no guard window waits for the agent): its verdict at the disconnect was
//   not written. Found by review: a hub out of touch with NATS when the agent
//   left cannot stamp the write (CLUSTER_UNAVAILABLE), and nothing tried
//   again, so the job read `running` for good if the host never came back
//   (other hubs leave a live hub's jobs alone). Settled by this hub, tried
//   again at every sweep until it is written.
// A single hub's records carry no stamp and are never this sweep's (the
// store retries its writes itself).
import type { Logger } from '../../common/platform/log.js';
import type { HostHolders } from '../holders/types.js';
import type { JobStore } from '../store/jobs.js';

export interface OrphanDeps {
  store: Pick<JobStore, 'hostsWithOpenJobs' | 'openFor'>;
  holders: Pick<HostHolders, 'hubName' | 'holder' | 'settlesOrphans' | 'hubAlive'>;
  sessions: { get(host: string): unknown };
  /** The job this hub tracks as HOST's active one (kept through a guard window after a disconnect). */
  activeJob(host: string): string | undefined;
  /** Interrupt job ID of HOST with REASON (if it is still open and its host still nowhere). */
  settle(host: string, id: string, reason: string): Promise<void>;
  log: Logger;
}

export class OrphanSweep {
  /** Orphaned job id -> since when (ms). */
  private readonly since = new Map<string, number>();
  /** Own jobs whose settling is under way (tried again at the next sweep if it fails). */
  private readonly settling = new Set<string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly d: OrphanDeps) {}

  start(graceMs: number, everyMs = Math.min(10_000, graceMs)): void {
    this.timer = setInterval(() => this.sweep(graceMs), everyMs);
    this.timer.unref();
  }

  sweep(graceMs: number, now = Date.now()): void {
    const { store, holders, sessions } = this.d;
    const seen = new Set<string>();
    const successor = holders.settlesOrphans();
    for (const host of store.hostsWithOpenJobs()) {
      if (holders.holder(host) || sessions.get(host)) continue;
      for (const rec of store.openFor(host)) {
        if (rec.state === 'queued' || rec.hub === undefined) continue;
        const own = rec.hub === holders.hubName;
        // A live hub's records are its own to settle: one that still keeps a guarded switch open after
        // the connection dropped (rollbackTimeoutMs may be minutes) must not read "interrupted" here.
        if (own ? this.d.activeJob(host) === rec.id : holders.hubAlive(rec.hub)) continue;
        seen.add(rec.id);
        const since = this.since.get(rec.id) ?? now;
        this.since.set(rec.id, since);
        if (now - since < graceMs) continue;
        if (own) this.settleOwn(host, rec.id);
        else if (successor) {
          this.since.delete(rec.id);
          const reason = `the hub that ran it (${rec.hub}) stopped, and the agent has not reconnected to any hub; it reports the result if it comes back`;
          this.d.settle(host, rec.id, reason).catch((err: Error) => this.d.log.warn({ host, jobId: rec.id, err: err.message }, 'cannot settle a job a dead hub left open'));
        }
      }
    }
    for (const id of this.since.keys()) if (!seen.has(id)) this.since.delete(id);
  }

  /** This hub's own job left open: written until it is (the record stays in the sweep while it is open). */
  private settleOwn(host: string, id: string): void {
    if (this.settling.has(id)) return;
    this.settling.add(id);
    const reason = 'the agent left during the job and has not reconnected to any hub; it reports the result if it comes back';
    this.d.settle(host, id, reason)
      .catch((err: Error) => this.d.log.warn({ host, jobId: id, err: err.message }, 'cannot record that a job of a departed agent was interrupted; trying again at the next sweep'))
      .finally(() => this.settling.delete(id));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
