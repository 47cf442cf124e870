// The single hub's holders: a host is held exactly while it has a live,
// welcomed session here (server/sessions.ts). Nothing is written: a hub
// restart starts with no holds, as agents reconnect.
import type { SessionRegistry } from '../server/sessions.js';
import type { LiveSession } from '../server/live-session.js';
import { sessionHolder, type Holder, type HostHolders, type Stamp } from './types.js';

export const LOCAL_HUB = 'local';

export class LocalHolders implements HostHolders {
  readonly hubName = LOCAL_HUB;

  constructor(private readonly sessions: Pick<SessionRegistry, 'get' | 'all'>) {}

  claim(_s: LiveSession): Promise<void> { return Promise.resolve(); }
  release(_s: LiveSession): void { /* the session registry forgot it */ }

  holder(host: string): Holder | null {
    const s = this.sessions.get(host);
    return s?.hello && !s.closed ? sessionHolder(s, LOCAL_HUB, 0) : null;
  }

  all(): Holder[] {
    return this.sessions.all().filter((s) => s.hello && !s.closed).map((s) => sessionHolder(s, LOCAL_HUB, 0));
  }

  /** One writer: job records need no stamp. */
  stamp(_host: string): Stamp | null { return null; }
  queuedJobId(_host: string): string | null { return null; }
  settlesOrphans(): boolean { return false; }
  hubAlive(name: string): boolean { return name === LOCAL_HUB; }
  hubUrls(): string[] { return []; }
  onLost(_fn: (host: string, byHub: string) => void): void { /* nobody else takes hosts */ }
  onCurrent(_fn: () => void): void { /* one hub is always current */ }
  async close(): Promise<void> { /* nothing held outside the process */ }
}
