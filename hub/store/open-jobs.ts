// Which jobs have not finished yet, per host, whoever wrote them: a takeover
// of a host settles them (hub/jobs/adopt.ts), a restart re-examines them
// (hub/jobs/recovery.ts). Kept as records change, so asking costs no scan.
import { FINAL_STATES, type JobRecord } from './job-record.js';

export class OpenJobs {
  /** Jobs not finished yet, per host. */
  private readonly byHost = new Map<string, Set<string>>();
  /** Job id -> host, for the ids in byHost (a deletion names only the key). */
  private readonly hostOf = new Map<string, string>();

  /** REC is the record shown now: open, or no longer. */
  index(rec: JobRecord): void {
    if (FINAL_STATES.has(rec.state)) {
      this.unindex(rec.id);
      return;
    }
    // Indexed already (a job's running record after its dispatched one): nothing changes.
    if (this.hostOf.get(rec.id) === rec.host) return;
    let ids = this.byHost.get(rec.host);
    if (!ids) this.byHost.set(rec.host, (ids = new Set()));
    ids.add(rec.id);
    this.hostOf.set(rec.id, rec.host);
  }

  unindex(id: string): void {
    const host = this.hostOf.get(id);
    if (host === undefined) return;
    this.hostOf.delete(id);
    const ids = this.byHost.get(host);
    ids?.delete(id);
    if (ids?.size === 0) this.byHost.delete(host);
  }

  ids(host: string): ReadonlySet<string> | undefined {
    return this.byHost.get(host);
  }

  hosts(): string[] {
    return [...this.byHost.keys()];
  }
}
