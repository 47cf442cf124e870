// Places in a session's inbound limits (inbound-gate.ts) held by messages
// whose answers the agent has not read. The hub answers a heartbeat with its
// echo and a job.end with a job.ack; a peer that sends and never reads would
// make those answers pile up, in the control channel's write buffer (it
// withholds the SSH window) or on its connection (it does not read TCP):
// replaying one recorded job.end at ~1 MiB/s took the hub +35 MiB a minute.
// While either has not drained, each answered message keeps its place in the
// limits, so such a peer soon stops being read (SSH flow control), and what
// waits stays bounded by sessionQueuedMessages answers.
import type { OutboundWaiter } from './outbound-guard.js';

/** The part of the control channel (an ssh2 ServerChannel) the holds watch. */
export interface DrainingChannel {
  readonly writableNeedDrain: boolean;
  once(ev: 'drain' | 'close', fn: () => void): unknown;
  off(ev: 'drain' | 'close', fn: () => void): unknown;
}

export class UnreadHolds {
  /** Releases waiting for the next drain (made when first needed: most sessions never need one). */
  private waiting: Array<() => void> | null = null;

  constructor(private readonly channel: DrainingChannel, private readonly outbound: OutboundWaiter | null) {}

  /** The agent has not read what the hub wrote to it. */
  backedUp(): boolean {
    return this.channel.writableNeedDrain || (this.outbound?.needsDrain() ?? false);
  }

  /** Call RELEASE now if the agent reads what the hub writes, else at the next drain. */
  hold(release: () => void): void {
    if (!this.backedUp()) return release();
    if (!this.waiting) {
      const list: Array<() => void> = (this.waiting = []);
      // One drain releases everything that waited for it, even if the hub
      // writes again at once (an SFTP download on the same connection must not
      // starve the control channel).
      void this.nextDrain().then(() => {
        this.waiting = null;
        for (const r of list) r();
      });
    }
    this.waiting.push(release);
  }

  private nextDrain(): Promise<void> {
    if (!this.channel.writableNeedDrain && this.outbound) return this.outbound.drained();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.channel.off('drain', done);
        this.channel.off('close', done);
        resolve();
      };
      this.channel.once('drain', done);
      this.channel.once('close', done);
    });
  }
}
