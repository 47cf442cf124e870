// Live sessions by host name, and dead-peer detection. One sweep timer for the
// whole hub (not one per connection): a session silent for 2.5 heartbeat
// periods is closed, which frees its name for the agent's next connection.
import type { Logger } from '../../common/platform/log.js';
import type { LiveSession } from './live-session.js';

export class SessionRegistry {
  private readonly byName = new Map<string, LiveSession>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly heartbeatMs: number, private readonly log: Logger) {}

  /** Make `s` the host's session; an older one is closed as replaced. */
  add(s: LiveSession): void {
    const old = this.byName.get(s.name);
    this.byName.set(s.name, s);
    if (old && old !== s) {
      this.log.info({ host: s.name, old: old.origin.remoteAddress, new: s.origin.remoteAddress }, 'new connection replaces the old one');
      old.close('REPLACED', 'a newer connection from this host replaced this one');
    }
  }

  /** Forget `s` if it is still the current one; true when it was. */
  remove(s: LiveSession): boolean {
    if (this.byName.get(s.name) !== s) return false;
    this.byName.delete(s.name);
    return true;
  }

  get(name: string): LiveSession | undefined {
    return this.byName.get(name);
  }

  all(): LiveSession[] {
    return [...this.byName.values()];
  }

  get size(): number {
    return this.byName.size;
  }

  startSweep(): void {
    const every = Math.max(50, Math.floor(this.heartbeatMs / 2));
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }

  private sweep(): void {
    const limit = Date.now() - this.heartbeatMs * 2.5;
    for (const s of this.byName.values()) {
      if (s.lastInbound < limit && !s.closed) {
        this.log.warn({ host: s.name, silentMs: Date.now() - s.lastInbound }, 'agent missed heartbeats; dropping its connection');
        // close() cuts the socket within a second; its 'close' event then
        // removes the session and interrupts its job through the normal path.
        s.close('INTERNAL', 'no heartbeat');
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
