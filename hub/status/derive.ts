// Which of Bento's states a host is in, from facts the hub holds. Pure and
// synchronous, so `bento-hub status`, the dashboard and tests share one
// definition. The states and their exact rules are documented in
// docs/status.md; keep the two in step.
//
// Upstream Bento derives its states from log files in each host's chroot
// compared with the time of the last configuration change. Here the "logs"
// are the hub's job records (triggered jobs and the ones the agent started
// itself) and the "last change" is the publish time of the host's current
// version (bento-hub deploy).
import type { HostStateName, StatusJob } from '../../common/protocol/admin.js';

export interface Published { hash: string; publishedAt: string }

export interface DeriveInput {
  /** A live, welcomed session right now. */
  connected: boolean;
  /** The host's most recent hello ever (survives hub restarts); null: never connected. */
  lastConnectedAt: string | null;
  /** The newest version the hub publishes for the host; null if none (push-only fleets). */
  published: Published | null;
  /** The published config hash the host reports running; null if it reports none. */
  applied: string | null;
  /** A job dispatched to it or running on it (triggered, or started by the agent itself). */
  active: StatusJob | null;
  /** Finished jobs, any order (the hub keeps the newest few per host). */
  finished: StatusJob[];
}

export interface Derived {
  state: HostStateName;
  detail: string | null;
  /** When offline: the state it was in when last seen. */
  lastKnownState: HostStateName | null;
}

/** Jobs that change what runs or what boots; a successful build or dry-activate changes neither. */
const APPLYING = new Set(['switch', 'test', 'boot']);

export const short = (hash: string | null | undefined): string => (hash ? hash.slice(0, 12) : '-');

const when = (j: StatusJob): number => Date.parse(j.startedAt ?? j.requestedAt);
const ended = (j: StatusJob): number => Date.parse(j.endedAt ?? j.startedAt ?? j.requestedAt);

/**
 * The job that decides the host's state: the newest finished job that either
 * applied something (switch, test, boot) or failed in any way. A successful
 * build or dry-activate says nothing about what the host runs.
 */
export function decidingJob(finished: StatusJob[]): StatusJob | null {
  let best: StatusJob | null = null;
  for (const j of finished) {
    if (j.state === 'success' && !APPLYING.has(j.action)) continue;
    if (!best || ended(j) > ended(best)) best = j;
  }
  return best;
}

/** The state while connected (or, for an offline host, when it was last seen). */
function settledState(i: DeriveInput): { state: HostStateName; detail: string | null } {
  const p = i.published;
  const j = decidingJob(i.finished);
  const actedOnNewest = j !== null && (p === null || when(j) >= Date.parse(p.publishedAt));
  if (p && !actedOnNewest) {
    // The newest published version has not been acted on by any job the hub saw.
    if (i.applied === p.hash) {
      return { state: 'auto updated', detail: `runs the published version ${short(p.hash)}, applied by the host itself (no job from the hub)` };
    }
    if (i.lastConnectedAt === null || Date.parse(i.lastConnectedAt) < Date.parse(p.publishedAt)) {
      return { state: 'sync pending', detail: `version ${short(p.hash)} was published after the host last connected; it fetches it at its next check (reconnect, trigger or pull timer)` };
    }
    return { state: 'rebuild pending', detail: `the host has seen version ${short(p.hash)} but runs ${i.applied ? short(i.applied) : 'an unknown version'}; it waits for a trigger` };
  }
  if (!j) return { state: 'new machine', detail: 'connected, but nothing was published or rebuilt yet' };
  if (j.state === 'rolled-back') return { state: 'rolled back', detail: j.reason };
  if (j.state === 'failure' || j.state === 'interrupted') return { state: 'failing', detail: j.reason ?? `${j.action} job ${j.id} ${j.state}` };
  if (j.origin === 'agent') return { state: 'auto updated', detail: `${j.action} job ${j.id} was started by the host itself` };
  if (p && i.applied !== null && i.applied !== p.hash) {
    return { state: 'rebuild pending', detail: `the last ${j.action} succeeded, but the host reports version ${short(i.applied)}, not the published ${short(p.hash)}` };
  }
  // "Up to date" means "runs the newest published version": with nothing published there is nothing to be up to date with.
  if (!p) return { state: 'nothing published', detail: `the last ${j.action} (job ${j.id}) succeeded; nothing is published for this host, so the hub cannot tell whether it runs the newest configuration` };
  return { state: 'up to date', detail: `runs the published version ${short(p.hash)}` };
}

export function deriveState(i: DeriveInput): Derived {
  if (i.active) {
    const by = i.active.origin === 'agent' ? ' (started by the host itself)' : '';
    return { state: 'running', detail: `${i.active.action} job ${i.active.id} ${i.active.state}${by}`, lastKnownState: null };
  }
  if (i.lastConnectedAt === null && i.finished.length === 0) {
    return { state: 'never connected', detail: `registered, but its agent never connected${i.published ? `; version ${short(i.published.hash)} waits for it` : ''}`, lastKnownState: null };
  }
  const settled = settledState(i);
  if (!i.connected) return { state: 'offline', detail: `was: ${settled.state}${settled.detail ? ` (${settled.detail})` : ''}`, lastKnownState: settled.state };
  return { ...settled, lastKnownState: null };
}
