// Job ids and fresh job records.
import { newJobIdBody } from '../../common/protocol/names.js';
import type { Action } from '../../common/protocol/messages.js';
import type { JobRecord } from '../store/jobs.js';

/**
 * Ids of jobs an agent starts itself: "local-" (its local page, `bento-client
 * upgrade`), "pull-" / "autoupdate-" (config pull with autoApply, flake
 * self-update). The hub records them when it hears of them.
 */
export const AGENT_JOB_ID = /^(local|pull|autoupdate)-/;

/** A new queued job; ID: the one every hub gives a job queued for a host nobody holds (hub/holders), else a fresh one. */
export function newJob(host: string, action: Action, id: string | null = null): JobRecord {
  return {
    id: id ?? newJobIdBody(), host, action, state: 'queued', requestedAt: new Date().toISOString(),
    startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null,
  };
}
