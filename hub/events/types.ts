// The hub's event seam: one typed bus for everything that happens (job
// events, agents connecting and leaving, a host's state changing), replacing
// JobWatchers and HubFeed. The embedded hub delivers in process; a cluster
// delivers through NATS subjects, so a follower on hub B sees a job that runs
// through hub A. Contract tests: test/contract/event-bus.ts.
import type { Action, Outcome, OutputStream } from '../../common/protocol/messages.js';

export type JobBusEvent =
  | { ev: 'started'; host: string; jobId: string }
  /**
   * `seq` is the line's place in the job's output as its writer numbers it, `ts` when the hub stored it
   * (store/types.ts OutputLine). `w`: the writer's tag (a cluster's output store; absent from older hubs and a
   * single hub): a job whose host moved mid-job has several writers, each numbering its own lines, so seqs
   * compare only between lines of one writer (admin/follow-fill.ts).
   */
  | { ev: 'output'; host: string; jobId: string; seq: number; ts: number; w?: string; stream: OutputStream; data: string }
  /**
   * `lines`: the seq of the job's last output line (0: none), when the hub that ended it knows it: a follower
   * fills the lines the bus lost just before the end from the stored output. Absent from older hubs. `w`: the
   * writer whose numbering `lines` is in (as on output lines).
   */
  | { ev: 'end'; host: string; jobId: string; outcome: Outcome; exitCode: number | null; durationMs: number; reason?: string; lines?: number; w?: string };

export type HubEvent =
  | { kind: 'job'; host: string; event: JobBusEvent }
  | { kind: 'connected'; host: string; carrier: string; reconnect: boolean }
  | { kind: 'disconnected'; host: string; carrier: string }
  /** Something about a host changed that has no event of its own (a job queued, a trigger coalesced, ...). */
  | { kind: 'changed'; host: string; action?: Action };

/**
 * What a subscriber wants: everything, one host's events, or one job's, from
 * every hub; or `local`: the events this hub publishes itself (its own
 * agents' connections, the jobs it runs), which is everything on an embedded
 * hub. Local is for what is counted per hub (the metrics' counters): in a
 * cluster it costs no network subscription, so the other hubs' traffic
 * (output lines included) is not sent to this one for nothing.
 */
export type EventFilter = { all: true } | { local: true } | { host: string } | { jobId: string };

/**
 * Guarantees every implementation must keep:
 *   1. publish() never throws and never waits for subscribers.
 *   2. A subscriber that throws is logged and isolated: the publisher and
 *      the other subscribers carry on.
 *   3. Events reach each subscriber in publish order per job and per host.
 *   4. Delivery never blocks: listeners are called without awaiting them,
 *      and a listener must not block either. A subscriber that writes to
 *      something slow (a socket, an SSE stream) goes through one bounded
 *      follower queue (hub/events/follower.ts, the issue "Hostile peers"),
 *      never an unbounded buffer of its own. A cluster bus keeps the same
 *      bound on its network subscriptions (NATS pending limits).
 */
export interface EventBus {
  publish(e: HubEvent): void;
  subscribe(filter: EventFilter, fn: (e: HubEvent) => void): Subscription;
  close(): Promise<void>;
}

export interface Subscription {
  unsubscribe(): void;
}
