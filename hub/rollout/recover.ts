// When a hub becomes a rollout's driver after another run drove it (this hub
// restarted, or the driving hub of a cluster died): bring the rollout's host
// records in line with the job records, which are the truth about what ran.
// Results recorded just before the old driver stopped (whose host record was
// not yet written) are applied here; results still to come arrive as job
// record changes, as always (agents replay them at their next connection,
// docs/architecture.md). The engine also runs it now and then on the
// rollouts it drives, as a safety net for a record change it missed.
import type { Logger } from '../../common/platform/log.js';
import { FINAL_STATES, type JobRecord } from '../store/jobs.js';
import { turnJobId, type MemberRecord, type RolloutRecord } from './records.js';
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
  /** Apply a final job record to its host (steps.ts settle; a failure may then halt the rollout). */
  settle(m: MemberRecord, rec: JobRecord): Promise<void>;
}

/** Slack between the host record written before a trigger and the job's requestedAt (same clock, so only ordering). */
const SLACK_MS = 1000;

/** Recover rollout R (this hub drives it now: R carries its driver). */
export async function recoverRollout(d: RecoverDeps, r: RolloutRecord): Promise<void> {
  const epoch = r.driver?.epoch ?? 0;
  let byHost: Map<string, JobRecord[]> | null = null;
  for (const m of d.store.membersOf(r.id)) {
    let cur = m;
    if (!m.jobId && (m.state === 'running' || m.state === 'queued')) {
      // Written just before a trigger the old driver may or may not have sent. Its turn's job id is
      // fixed (turnJobId); records of hubs before turn ids are found by host and time.
      let found = d.jobs.get(turnJobId(r, m.host));
      if (!found) {
        byHost ??= jobsByHost(d.jobs.all());
        const since = Date.parse(m.since) - SLACK_MS;
        found = (byHost.get(m.host) ?? []).filter((j) => Date.parse(j.requestedAt) >= since && j.action === r.action).pop();
      }
      if (!found) {
        // Not triggered (yet): the host's turn comes again, with the same job id, so a trigger of the old
        // driver still on its way and this hub's name one job. If it does not come again (the rollout is
        // aborted or halted now), that trigger's job is taken back when it lands (steps.ts adopt).
        await d.store.forget(r.id, m.host, epoch);
        d.log.info({ rollout: r.id, host: m.host }, 'rollout host was about to start when its driver stopped; it gets its turn again');
        continue;
      }
      cur = { ...m, jobId: found.id, epoch };
      await d.store.saveMember(cur);
    }
    if (!cur.jobId) continue;
    const rec = d.jobs.get(cur.jobId);
    if (!rec || !FINAL_STATES.has(rec.state)) {
      if (rec && cur.state === 'queued' && rec.state !== 'queued') await d.store.saveMember({ ...cur, state: 'running', epoch });
      continue;
    }
    await d.settle(cur, rec);
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
