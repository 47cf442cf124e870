// Jobs a hub finds in flight (dispatched or running) when it starts: the hub
// that sent them died. They are settled per host, at that host's hello,
// because only the agent knows: it still runs the job (hello.runningJobId),
// its result waits in its outbox (hello.unreported), or it never had it.
// Nothing is decided at start, so a hub starting next to others in a cluster
// leaves their hosts' jobs alone.
//
// A host that does not come back must not show "running" forever: when the
// grace (counted from hub start) ends, the jobs of every host that is not
// connected are marked interrupted; a host connected then, whose result is
// still on its way, is settled by that result or, if it leaves without
// sending it, at its disconnect. A result that arrives later still wins
// (docs/architecture.md, "Durable state and crashes").

import type { Hello } from '../../common/protocol/messages.js';

/** Twice the agent's default maximum reconnect backoff (60 s): a live agent is back well before. */
export const RECOVERY_GRACE_MS = 120_000;

export class InFlightAtStart {
  /** Host -> ids of its jobs in flight at start, not settled yet. */
  private readonly byHost = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | null = null;
  private over = false;

  add(host: string, id: string): void {
    let ids = this.byHost.get(host);
    if (!ids) this.byHost.set(host, (ids = new Set()));
    ids.add(id);
  }

  /**
   * The host's jobs to interrupt now, given its hello (null: it is gone). The
   * job it still runs is settled (the scheduler makes it active again); those
   * whose result it is about to replay stay until that result or its departure.
   */
  unclaimed(host: string, hello: Pick<Hello, 'runningJobId' | 'unreported'> | null): string[] {
    const ids = this.byHost.get(host);
    if (!ids) return [];
    const replaying = new Set(hello?.unreported ?? []);
    const out: string[] = [];
    for (const id of ids) {
      if (replaying.has(id) && id !== hello?.runningJobId) continue;
      ids.delete(id);
      if (id !== hello?.runningJobId) out.push(id);
    }
    if (ids.size === 0) this.byHost.delete(host);
    return out;
  }

  has(host: string, id: string): boolean {
    return this.byHost.get(host)?.has(id) ?? false;
  }

  settled(host: string, id: string): void {
    const ids = this.byHost.get(host);
    if (!ids) return;
    ids.delete(id);
    if (ids.size === 0) this.byHost.delete(host);
  }

  /** The grace ended: a host without a connection is not coming back in time. */
  get graceOver(): boolean {
    return this.over;
  }

  /** Call `expire` with every host that still has unsettled jobs once `ms` have passed. */
  startGrace(ms: number, expire: (hosts: string[]) => void): void {
    if (this.byHost.size === 0) {
      this.over = true;
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.over = true;
      expire([...this.byHost.keys()]);
    }, ms);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
