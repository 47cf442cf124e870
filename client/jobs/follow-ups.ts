// What waits behind the running job: at most one job of the hub's and one of
// the agent's own (a local "upgrade now", a pull's or an auto-update's run).
//
// Requests made while a job runs coalesce: a newer one replaces a waiting one
// of its kind. But a hub job has a record at the hub that only this agent's
// result ends, so it is never silently dropped (found by review: with one
// slot for both, a local press or a pull crossing a hub job replaced it, and
// the hub's record read "dispatched" until the agent next reconnected):
// - an agent's own request with the same action as the waiting hub job is
//   merged into it (one rebuild serves both); with another action it waits
//   behind the hub job, which runs first;
// - a hub job replaces a waiting own request of the same action (merged);
// - a hub job that replaces another hub job (two hubs that each believed
//   they held the host) makes the replaced one end here at once,
//   `interrupted`, so its hub hears of it.
import type { JobStart } from '../../common/protocol/messages.js';
import { agentJobOrigin } from '../../common/protocol/names.js';

/** What adding a request did to the waiting ones. */
export interface FollowUpChange {
  /** Requests that will not run on their own: each is served by `into`. */
  merged: Array<{ request: JobStart; into: JobStart }>;
  /** A hub job replaced by a newer hub job: it ends without running. */
  superseded: JobStart | null;
}

export class FollowUps {
  private hub: JobStart | null = null;
  private own: JobStart | null = null;

  /** Queue MSG behind the running job. */
  add(msg: JobStart): FollowUpChange {
    const change: FollowUpChange = { merged: [], superseded: null };
    if (this.hub?.jobId === msg.jobId || this.own?.jobId === msg.jobId) return change;
    if (agentJobOrigin(msg.jobId) === null) {
      if (this.hub) change.superseded = this.hub;
      this.hub = msg;
      if (this.own?.action === msg.action) {
        change.merged.push({ request: this.own, into: msg });
        this.own = null;
      }
      return change;
    }
    if (this.hub?.action === msg.action) {
      change.merged.push({ request: msg, into: this.hub });
      return change;
    }
    if (this.own) change.merged.push({ request: this.own, into: msg });
    this.own = msg;
    return change;
  }

  /** The next job to run (the hub's first), taken out. */
  take(): JobStart | null {
    const next = this.hub ?? this.own;
    if (next === this.hub) this.hub = null;
    else this.own = null;
    return next;
  }

  /** How many wait. */
  get size(): number {
    return (this.hub ? 1 : 0) + (this.own ? 1 : 0);
  }
}
