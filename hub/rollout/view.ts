// A rollout as the admin protocol shows it (common/protocol/rollout.ts):
// the summary for lists (`status`, the dashboard) and the full view with
// every host for `rollout status ID` and the follow stream.
import { emptyCounts, parseSize, type MemberState, type RolloutDetail, type RolloutHostView, type RolloutSummary } from '../../common/protocol/rollout.js';
import { toleratedFailures } from './plan.js';
import type { MemberRecord, RolloutRecord } from './records.js';

/** A host with no record: pending, or never started in a rollout that was aborted. */
function stateOf(r: RolloutRecord, m: MemberRecord | undefined): MemberState {
  if (m) return m.state;
  return r.state === 'aborted' ? 'cancelled' : 'pending';
}

export function hostView(r: RolloutRecord, wave: number, host: string, m: MemberRecord | undefined): RolloutHostView {
  return { host, wave: wave + 1, state: stateOf(r, m), jobId: m?.jobId ?? null, since: m?.since ?? null, reason: m?.reason ?? null, health: m?.health ?? null };
}

export function rolloutSummary(r: RolloutRecord, members: ReadonlyMap<string, MemberRecord>): RolloutSummary {
  const counts = emptyCounts();
  for (const w of r.waves) for (const h of w) counts[stateOf(r, members.get(h))] += 1;
  return {
    id: r.id, state: r.state, action: r.action, createdAt: r.createdAt, updatedAt: r.updatedAt, endedAt: r.endedAt,
    reason: r.reason, wave: Math.min(r.wave, r.waves.length - 1) + 1, waves: r.waves.length,
    hosts: r.waves.reduce((n, w) => n + w.length, 0), maxInFlight: r.opts.maxInFlight, offline: r.opts.offline, counts,
    driver: r.driver?.hub ?? null,
  };
}

export function rolloutDetail(r: RolloutRecord, members: ReadonlyMap<string, MemberRecord>): RolloutDetail {
  const maxFailures = parseSize(r.opts.maxFailures, '--max-failures', { zero: true });
  const hosts: RolloutHostView[] = [];
  const plan = r.waves.map((w, i) => {
    const counts = emptyCounts();
    for (const h of w) {
      const v = hostView(r, i, h, members.get(h));
      counts[v.state] += 1;
      hosts.push(v);
    }
    return { wave: i + 1, size: w.length, maxFailures: toleratedFailures(maxFailures, w.length), counts };
  });
  return {
    ...rolloutSummary(r, members),
    selection: r.selection,
    options: { canary: r.opts.canary, waves: r.opts.waves, maxFailures: r.opts.maxFailures, offlineTimeoutMs: r.opts.offlineTimeoutMs, pauseAfterCanary: r.opts.pauseAfterCanary },
    plan,
    members: hosts,
  };
}

/** How a finished rollout ended, in a sentence: "5 healthy, 1 skipped (offline)". */
export function doneReason(ms: readonly MemberRecord[]): string {
  const n = (s: MemberRecord['state']): number => ms.filter((m) => m.state === s).length;
  const parts = [`${n('healthy')} healthy`];
  if (n('failed')) parts.push(`${n('failed')} failed (within the threshold or resumed past)`);
  if (n('skipped')) parts.push(`${n('skipped')} skipped (offline)`);
  if (n('queued')) parts.push(`${n('queued')} queued until they connect`);
  return parts.join(', ');
}
