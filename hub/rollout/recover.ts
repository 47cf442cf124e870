// After a hub start: bring every rollout's host records in line with the job
// records, which are the truth about what ran. Results the scheduler recorded
// just before the hub died (whose host record was not yet written) are applied
// here; results still to come arrive as job ends on the bus, as always
// (agents replay them at their next connection, docs/architecture.md).
import type { Logger } from '../../common/platform/log.js';
import { FINAL_STATES, type JobRecord } from '../store/jobs.js';
import type { MemberRecord } from './records.js';
import type { RolloutStore } from './store.js';

/** A host's record once its job ended: healthy only on success. */
export function afterEnd(m: MemberRecord, end: { outcome: string; reason: string | null; health: 'passed' | 'failed' | null }): MemberRecord {
  const ok = end.outcome === 'success';
  return {
    ...m, state: ok ? 'healthy' : 'failed', since: new Date().toISOString(), acknowledged: false,
    reason: ok ? null : `${end.outcome}${end.reason ? `: ${end.reason}` : ''}`, health: end.health,
  };
}

export interface RecoverDeps {
  store: RolloutStore;
  jobs: { get(id: string): JobRecord | undefined; all(): JobRecord[] };
  log: Logger;
  /** Follow this job's events for that rollout's host. */
  track(jobId: string, rollout: string, host: string): void;
}

/** Slack between the host record written before a trigger and the job's requestedAt (same clock, so only ordering). */
const SLACK_MS = 1000;

export async function recoverRollouts(d: RecoverDeps): Promise<void> {
  let byHost: Map<string, JobRecord[]> | null = null;
  for (const r of d.store.all()) {
    for (const m of d.store.membersOf(r.id)) {
      let cur = m;
      if (!m.jobId && (m.state === 'running' || m.state === 'queued')) {
        // Written just before a trigger that the hub may or may not have made.
        byHost ??= jobsByHost(d.jobs.all());
        const since = Date.parse(m.since) - SLACK_MS;
        const found = (byHost.get(m.host) ?? []).filter((j) => Date.parse(j.requestedAt) >= since && j.action === r.action).pop();
        if (!found) {
          // Not triggered: the host's turn comes again (a running rollout starts it; a halted one at resume).
          await d.store.forget(r.id, m.host);
          d.log.info({ rollout: r.id, host: m.host }, 'rollout host was about to start when the hub stopped; it gets its turn again');
          continue;
        }
        cur = { ...m, jobId: found.id };
        await d.store.saveMember(cur);
      }
      if (!cur.jobId) continue;
      d.track(cur.jobId, r.id, cur.host);
      const rec = d.jobs.get(cur.jobId);
      if (!rec || !FINAL_STATES.has(rec.state)) {
        if (rec && cur.state === 'queued' && rec.state !== 'queued') await d.store.saveMember({ ...cur, state: 'running' });
        continue;
      }
      const next = afterEnd(cur, { outcome: rec.state, reason: rec.reason, health: rec.health ?? null });
      if (next.state !== cur.state || next.reason !== cur.reason) {
        await d.store.saveMember(cur.state === next.state ? { ...next, acknowledged: cur.acknowledged } : next);
        d.log.info({ rollout: r.id, host: cur.host, jobId: cur.jobId, state: next.state }, 'rollout host result taken from its job record');
      }
    }
  }
}

function jobsByHost(all: JobRecord[]): Map<string, JobRecord[]> {
  const out = new Map<string, JobRecord[]>();
  for (const j of all.sort((a, b) => a.requestedAt.localeCompare(b.requestedAt))) {
    let list = out.get(j.host);
    if (!list) out.set(j.host, (list = []));
    list.push(j);
  }
  return out;
}
