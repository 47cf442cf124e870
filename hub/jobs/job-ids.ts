// Job ids and fresh job records.
import { newJobIdBody } from '../../common/protocol/names.js';
export { AGENT_JOB_ID } from '../../common/protocol/names.js';
import type { Action } from '../../common/protocol/messages.js';
import type { JobRecord } from '../store/jobs.js';

/** A new queued job; ID: the one every hub gives a job queued for a host nobody holds (hub/holders), else a fresh one. */
export function newJob(host: string, action: Action, id: string | null = null): JobRecord {
  return {
    id: id ?? newJobIdBody(), host, action, state: 'queued', requestedAt: new Date().toISOString(),
    startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null,
  };
}

/**
 * BASE (a queued job's shared id, holds.ts queuedJobId: the host's claim
 * epoch and its name), or the first of BASE's successors ("q5-1_...",
 * "q5-2_...") that names no job yet. The epoch stays while the host is away,
 * so a second job queued in that time (after the first was withdrawn, or
 * when the holds bucket lost a claim and the epoch went back) would
 * overwrite the first one's record under the same id. Every hub derives the
 * same successor from the same records. Null after 1,000 taken.
 */
export function freeQueuedId(base: string, taken: (id: string) => boolean): string | null {
  if (!taken(base)) return base;
  const cut = base.indexOf('_');
  for (let n = 1; n <= 1000; n++) {
    const id = `${base.slice(0, cut)}-${n}${base.slice(cut)}`;
    if (!taken(id)) return id;
  }
  return null;
}
