// The same state derivation for callers that need it synchronously (the
// dashboard's per-row StateProvider): published versions are read ahead into
// a cache that the caller refreshes (one small file per host).
import type { StatusJob } from '../../common/protocol/admin.js';
import { readPublished } from '../publish/published.js';
import { AGENT_JOB_ID } from '../jobs/job-ids.js';
import { deriveState, type Derived, type Published } from './derive.js';

export class PublishedCache {
  private readonly map = new Map<string, Published | null>();

  constructor(private readonly fleetDir: string, private readonly read: (fleetDir: string, host: string) => Promise<Published | null> = readPublished) {}

  /** Re-read the published version of these hosts. */
  async refresh(hosts: string[]): Promise<void> {
    const got = await Promise.all(hosts.map((h) => this.read(this.fleetDir, h).catch(() => null)));
    hosts.forEach((h, i) => this.map.set(h, got[i] ?? null));
  }

  get(host: string): Published | null {
    return this.map.get(host) ?? null;
  }
}

type JobLike = Omit<StatusJob, 'origin'> & { origin?: 'hub' | 'agent' };

/** The fields of a dashboard row (hub/web/model.ts HostRow) the derivation needs. */
export interface RowLike {
  name: string;
  client: { configHash: string | null } | null;
  facts: { lastConnectedAt: string | null; configHash: string | null } | null;
  activeJob: JobLike | null;
  lastJob: JobLike | null;
  /** All finished jobs, when the caller has them (better than lastJob alone). */
  finishedJobs?: JobLike[];
}

const withOrigin = (j: JobLike): StatusJob => ({ ...j, origin: j.origin ?? (AGENT_JOB_ID.test(j.id) ? 'agent' : 'hub') });

/** A StateProvider for the dashboard: `stateProvider: makeStateProvider((h) => cache.get(h))`. */
export function makeStateProvider(published: (host: string) => Published | null): (row: RowLike) => { state: string; detail: string | null } {
  return (row) => {
    const d: Derived = deriveState({
      connected: row.client !== null,
      lastConnectedAt: row.facts?.lastConnectedAt ?? null,
      published: published(row.name),
      applied: row.client ? row.client.configHash : row.facts?.configHash ?? null,
      active: row.activeJob ? withOrigin(row.activeJob) : null,
      finished: (row.finishedJobs ?? (row.lastJob ? [row.lastJob] : [])).map(withOrigin),
    });
    return { state: d.state, detail: d.detail };
  };
}
