// Which hosts of the rollouts this hub drives connect: a host whose turn came
// while it was offline (waiting, or not started yet) gets it when its agent
// connects, at any hub of a cluster.
//
// The bus is subscribed only while this hub drives a running rollout: the
// subscription is to every hub's events, and in a cluster that brings every
// other hub's traffic (output lines included) over NATS to this one
// (docs/cluster.md, "Events"), which a hub driving no rollout would pay for
// nothing.
import type { EventBus, HubEvent, Subscription } from '../events/types.js';
import { waveOf } from './plan.js';
import type { RolloutRecord } from './records.js';
import type { RolloutStore } from './store.js';
import { drivenBy, type RolloutDriving } from './driver.js';

export interface ConnectionsDeps {
  bus: EventBus;
  store: Pick<RolloutStore, 'all' | 'member'>;
  driving: RolloutDriving;
  /** Drive rollout ID on (engine.ts kick). */
  kick(id: string): void;
}

export class RolloutConnections {
  private sub: Subscription | null = null;
  private closed = false;

  constructor(private readonly d: ConnectionsDeps) {}

  /** Subscribe or unsubscribe as the rollouts stand now. Called before the engine looks at who is connected, so a connection after that is heard. */
  sync(): void {
    const want = !this.closed && this.drivenHere().length > 0;
    if (want && !this.sub) this.sub = this.d.bus.subscribe({ all: true }, (e) => this.onEvent(e));
    else if (!want && this.sub) {
      this.sub.unsubscribe();
      this.sub = null;
    }
  }

  close(): void {
    this.closed = true;
    this.sync();
  }

  /** The running rollouts this hub drives. */
  private drivenHere(): RolloutRecord[] {
    return this.d.store.all().filter((r) => r.state === 'running' && drivenBy(r.driver, this.d.driving));
  }

  private onEvent(e: HubEvent): void {
    if (e.kind !== 'connected') return;
    for (const r of this.drivenHere()) {
      const m = this.d.store.member(r.id, e.host);
      const w = waveOf(r, e.host);
      if ((!m || m.state === 'waiting') && w !== -1 && w <= r.wave) this.d.kick(r.id);
    }
  }
}
