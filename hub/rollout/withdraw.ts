// A rollout halts or is aborted: its hosts that were waited for (--offline
// wait) or queued (--offline queue) do not run. Halt: they go back to pending
// (a resume gives them their turn again). Abort: they are cancelled. A queued
// job is withdrawn at the scheduler (it ends `interrupted` with the reason);
// one that started meanwhile goes on and its result still counts. Jobs
// already running go on too: stopping a switch half way is worse than
// letting it finish.
import type { RolloutRecord } from './records.js';
import type { RolloutStore } from './store.js';

export interface WithdrawDeps {
  store: RolloutStore;
  cancelQueued(host: string, jobId: string, reason: string): Promise<boolean>;
}

export async function withdrawWaiting(d: WithdrawDeps, r: RolloutRecord, why: 'halt' | 'abort'): Promise<void> {
  const epoch = r.driver?.epoch ?? 0;
  for (const m of d.store.membersOf(r.id)) {
    if (m.state !== 'waiting' && m.state !== 'queued') continue;
    if (m.state === 'queued' && m.jobId) {
      const cancelled = await d.cancelQueued(m.host, m.jobId, `cancelled: rollout ${r.id} was ${why === 'halt' ? 'halted' : 'aborted'} before the host connected`);
      if (!cancelled) continue; // it started meanwhile: its result still counts
    }
    // The withdrawn job's record change reaches the engine after this (one queue per rollout): the host has
    // no record then (halt), or is cancelled, which a result never changes (steps.ts settle).
    if (why === 'halt') await d.store.forget(r.id, m.host, epoch);
    else await d.store.saveMember({ ...m, state: 'cancelled', since: new Date().toISOString(), reason: 'the rollout was aborted before its job ran', epoch });
  }
}
