// How a trigger reaches the hub that holds its host. One hub holds every
// connected host itself: the trigger goes straight to its scheduler
// (LocalRouter). A cluster asks the holding hub over NATS request/reply
// (hub/cluster/routing.ts); either way the caller gets the same answer, and
// follows the job on the event bus, which every hub shares.
import type { Action } from '../../common/protocol/messages.js';
import type { Prebuilt } from './prebuilt.js';
import type { Scheduler, TriggerResult } from './scheduler.js';

export interface TriggerRequest {
  host: string;
  action: Action;
  /** Queue it if the host is not connected (else HOST_OFFLINE). */
  queue: boolean;
  prebuilt?: Prebuilt;
  /** The id the job gets; a job that has it already is answered instead (scheduler.ts trigger). */
  jobId?: string;
}

export interface RoutedTrigger extends TriggerResult {
  /** Nobody holds the host: the job waits in its queue. */
  offline: boolean;
  /** The hub that took the trigger (holds the host, or queued it). */
  hub: string;
}

export interface TriggerRouter {
  trigger(r: TriggerRequest): Promise<RoutedTrigger>;
  close(): Promise<void>;
}

export class LocalRouter implements TriggerRouter {
  constructor(private readonly d: { scheduler: Pick<Scheduler, 'trigger'>; sessions: { get(host: string): unknown }; hubName: string }) {}

  trigger(r: TriggerRequest): Promise<RoutedTrigger> {
    // The request carries the trigger options (prebuilt, jobId) itself: no copy per host of a fan-out.
    return this.d.scheduler.trigger(r.host, r.action, r.queue, r).then((res) => ({ ...res, offline: !this.d.sessions.get(r.host), hub: this.d.hubName }));
  }

  async close(): Promise<void> { /* nothing to stop */ }
}
