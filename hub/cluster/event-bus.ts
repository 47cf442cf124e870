// The EventBus across hubs, on core NATS subjects (hub/events/types.ts has
// the guarantees). An event goes to this hub's subscribers in process at
// once (so following a job this hub runs keeps working while NATS is away),
// and to <prefix>.ev.<host>.<job> for the other hubs, whose subscriptions
// filter by subject: all (ev.>), one host (ev.<host>.*), one job (ev.*.<job>).
//
// Core NATS, not JetStream: events are live notifications (a follower joins
// them with the stored output by seq), so at-most-once delivery is what they
// need and nothing is kept. Order per publisher is kept by the connection,
// which is made with noEcho (connection.ts): the server never sends this
// hub's own events back, so they reach its subscribers once, in process.
// Subscribers to one subject share one NATS subscription (wire()).
//
// Bounded: each subscription is a callback subscription, which nats.js runs
// inline as messages are parsed, so no client-side queue grows behind a
// subscriber (listeners must not block; slow work goes through a follower
// queue, see hub/events/types.ts). What the server buffers for this hub is
// capped by its max_pending (64 MiB by default): past it the server drops the
// connection as a slow consumer and the client reconnects.
import type { NatsConnection, Subscription as NatsSubscription } from '@nats-io/transport-node';
import type { Logger } from '../../common/platform/log.js';
import type { EventBus, EventFilter, HubEvent, Subscription } from '../events/types.js';
import type { ClusterNames } from './names.js';
import { decodeEvent, encodeEvent, eventJobId } from './event-codec.js';

export interface NatsBusDeps {
  nc: NatsConnection;
  names: ClusterNames;
  log: Logger;
}

interface Sub { filter: EventFilter; fn: (e: HubEvent) => void }
interface Wire { subs: Set<Sub>; nats: NatsSubscription | null }

/** Whether F wants E, an event this hub published (local subscribers want all of those). */
function matches(f: EventFilter, e: HubEvent): boolean {
  if ('all' in f || 'local' in f) return true;
  if ('host' in f) return e.host === f.host;
  return eventJobId(e) === f.jobId;
}

export class NatsEventBus implements EventBus {
  private readonly subs = new Set<Sub>();
  private readonly wires = new Map<string, Wire>();
  private closed = false;
  private malformed = 0;

  constructor(private readonly d: NatsBusDeps) {}

  publish(e: HubEvent): void {
    if (this.closed) return;
    for (const s of [...this.subs]) if (matches(s.filter, e)) this.deliver(s, e);
    try {
      this.d.nc.publish(this.d.names.eventSubject(e.host, eventJobId(e)), encodeEvent(e));
    } catch (err) {
      // Closed connection or an unencodable event: the other hubs miss it, this one had it.
      this.d.log.debug({ host: e.host, err: (err as Error).message }, 'event not published to the cluster');
    }
  }

  subscribe(filter: EventFilter, fn: (e: HubEvent) => void): Subscription {
    const s: Sub = { filter, fn };
    this.subs.add(s);
    // This hub's own events reach it in process (publish()); nothing to ask NATS for.
    if ('local' in filter) return { unsubscribe: () => { this.subs.delete(s); } };
    const subject = this.d.names.eventFilter(filter);
    const wire = this.closed ? null : this.wire(subject);
    wire?.subs.add(s);
    return {
      unsubscribe: () => {
        if (!this.subs.delete(s) || !wire) return;
        wire.subs.delete(s);
        if (wire.subs.size > 0) return;
        this.wires.delete(subject);
        try { wire.nats?.unsubscribe(); } catch { /* connection closed */ }
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.wires.values()) {
      try { w.nats?.unsubscribe(); } catch { /* connection closed */ }
    }
    this.wires.clear();
    this.subs.clear();
  }

  /**
   * One NATS subscription per subject, shared by this hub's subscribers to it
   * (the metrics, the rollout engine and every admin following several hosts
   * all want `ev.>`): the server sends each event once, and it is decoded
   * once, however many listen here.
   */
  private wire(subject: string): Wire {
    const had = this.wires.get(subject);
    if (had) return had;
    const w: Wire = { subs: new Set(), nats: null };
    this.wires.set(subject, w);
    try {
      w.nats = this.d.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err || w.subs.size === 0) return;
          const r = decodeEvent(msg.data);
          if ('problem' in r) {
            if (this.malformed++ % 1000 === 0) this.d.log.warn({ subject: msg.subject, problem: r.problem, total: this.malformed }, 'dropping a malformed cluster event');
            return;
          }
          for (const s of [...w.subs]) if (matches(s.filter, r.event)) this.deliver(s, r.event);
        },
      });
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'cannot subscribe to cluster events; this hub sees its own only');
    }
    return w;
  }

  private deliver(s: Sub, e: HubEvent): void {
    try {
      s.fn(e);
    } catch (err) {
      this.d.log.error({ host: e.host, kind: e.kind, err: (err as Error).message }, 'an event subscriber threw; carrying on');
    }
  }
}
