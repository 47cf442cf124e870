// The embedded hub's EventBus (types.ts): delivery in process, synchronous,
// in publish order. It replaces JobWatchers (job events per job id, which let
// a listener's exception escape into the scheduler) and HubFeed (connections,
// fed by hand from the daemon).
//
// Synchronous on purpose: the admin's `trigger --follow` subscribes right
// after job.start is sent and must see every line, and the dashboard joins a
// job's buffered output and its live lines in one tick. A listener runs
// inside publish(), so it must be quick and must not throw; one that does is
// logged and skipped, and the publisher (the scheduler recording a result)
// never sees it. An event published from inside a listener is queued and
// delivered after the current one, so every subscriber sees one order.
import type { Logger } from '../../common/platform/log.js';
import type { EventBus, EventFilter, HubEvent, Subscription } from './types.js';

type Listener = (e: HubEvent) => void;

export class LocalEventBus implements EventBus {
  private readonly everything = new Set<Listener>();
  private readonly byHost = new Map<string, Set<Listener>>();
  private readonly byJob = new Map<string, Set<Listener>>();
  private queue: HubEvent[] = [];
  private delivering = false;
  private closed = false;

  constructor(private readonly log: Logger) {}

  publish(e: HubEvent): void {
    if (this.closed) return;
    this.queue.push(e);
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let i = 0; i < this.queue.length; i += 1) this.deliver(this.queue[i]!);
    } finally {
      this.queue = [];
      this.delivering = false;
    }
  }

  subscribe(filter: EventFilter, fn: Listener): Subscription {
    // In process, every event is this hub's own: local is all.
    const [index, key] = 'all' in filter || 'local' in filter ? [null, ''] : 'host' in filter ? [this.byHost, filter.host] : [this.byJob, filter.jobId];
    let set = index ? index.get(key) : this.everything;
    if (!set) index!.set(key, (set = new Set()));
    // A wrapper per subscription: the same function subscribed twice is two subscriptions.
    const own: Listener = (e) => fn(e);
    set.add(own);
    const target = set;
    return {
      unsubscribe: () => {
        target.delete(own);
        if (index && target.size === 0 && index.get(key) === target) index.delete(key);
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.everything.clear();
    this.byHost.clear();
    this.byJob.clear();
  }

  private deliver(e: HubEvent): void {
    this.call(this.everything, e);
    const host = this.byHost.get(e.host);
    if (host) this.call(host, e);
    const job = e.kind === 'job' ? this.byJob.get(e.event.jobId) : undefined;
    if (job) this.call(job, e);
  }

  private call(set: Set<Listener>, e: HubEvent): void {
    for (const fn of set) {
      try {
        fn(e);
      } catch (err) {
        this.log.error({ err: (err as Error).message, event: e.kind, host: e.host }, 'event listener failed');
      }
    }
  }
}
