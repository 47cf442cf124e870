// The rollback guard's proof that the hub is still reachable after a switch
// (guard.ts): a NEW connection must complete its handshake within the window,
// since an established one can survive a firewall or route change that breaks
// every new one. The agent's reconnect backoff may sleep longer than the
// whole window, so while the proof waits it nudges the agent to retry now
// (docs/rollback.md).

/** What the proof needs from the agent. */
export interface ReconnectingAgent {
  /** Drop the connection; true when a NEW one completes its handshake in time. */
  freshConnection(timeoutMs: number): Promise<boolean>;
  /** Retry connecting now rather than after the backoff delay. */
  retryNow?(): void;
  readonly connected: boolean;
}

export class ConnectionProof {
  private connectedSinceStart = false;
  private waiters: Array<() => void> = [];

  constructor(private readonly agent: ReconnectingAgent) {}

  /** Call on every connection the agent completes. */
  connected(): void {
    this.connectedSinceStart = true;
    this.waiters.splice(0).forEach((w) => w());
  }

  /** The agent's own freshConnection, nudged so one long backoff sleep cannot eat the window. */
  async fresh(ms: number): Promise<boolean> {
    const fresh = this.agent.freshConnection(ms);
    const nudge = this.nudge(ms);
    try {
      return await fresh;
    } finally {
      clearInterval(nudge);
    }
  }

  /** After a restart every connection is fresh: wait for the first one, without dropping a handshake in progress. */
  async firstSinceStart(ms: number): Promise<boolean> {
    if (this.connectedSinceStart) return true;
    const nudge = this.nudge(ms);
    try {
      return await new Promise<boolean>((resolve) => {
        const done = (): void => { clearTimeout(t); resolve(true); };
        const t = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== done); resolve(false); }, ms);
        this.waiters.push(done);
      });
    } finally {
      clearInterval(nudge);
    }
  }

  private nudge(windowMs: number): NodeJS.Timeout {
    return setInterval(() => { if (!this.agent.connected) this.agent.retryNow?.(); }, nudgeEvery(windowMs));
  }
}

function nudgeEvery(windowMs: number): number {
  return Math.max(500, Math.min(5000, Math.floor(windowMs / 6)));
}
