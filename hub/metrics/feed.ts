// What happens on the hub, as events the metrics and the dashboard observe:
// agents connecting and disconnecting, and every job event. The daemon
// reports connections; job events come from JobWatchers.watchAll. A listener
// that throws is isolated: it can never break the daemon's own handling.
import type { LiveSession } from '../server/live-session.js';
import type { JobEvent, JobWatchers } from '../jobs/watchers.js';
import type { Logger } from '../../common/platform/log.js';

export type FeedEvent =
  | { kind: 'connected'; host: string; carrier: string; reconnect: boolean }
  | { kind: 'disconnected'; host: string; carrier: string }
  | { kind: 'job'; host: string; event: JobEvent }
  /** Something about a host changed that has no event of its own (a trigger queued a job, ...). */
  | { kind: 'changed'; host: string };

export type FeedListener = (e: FeedEvent) => void;

export class HubFeed {
  private readonly listeners = new Set<FeedListener>();

  constructor(private readonly log: Logger, watchers?: JobWatchers) {
    watchers?.watchAll((event) => this.emit({ kind: 'job', host: event.host, event }));
  }

  on(fn: FeedListener): () => void {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  }

  /** A valid hello; `reconnect` when this host had been connected before. */
  connected(s: LiveSession, reconnect: boolean): void {
    this.emit({ kind: 'connected', host: s.name, carrier: s.origin.carrier, reconnect });
  }

  disconnected(s: LiveSession): void {
    this.emit({ kind: 'disconnected', host: s.name, carrier: s.origin.carrier });
  }

  changed(host: string): void {
    this.emit({ kind: 'changed', host });
  }

  private emit(e: FeedEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        this.log.error({ err: (err as Error).message, event: e.kind }, 'feed listener failed');
      }
    }
  }
}
