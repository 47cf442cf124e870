// Admission control for SSH handshakes. Key exchange and signature checks
// are synchronous CPU work on the hub's one event loop (~4-5 ms per
// handshake here), and ssh2 accepts every connection at once: after a hub
// restart, 10,000 agents reconnecting with 512 handshakes in flight made one
// loop turn so long that `list` took up to 5.6 s (on a busy machine), while
// with 64 in flight it stayed under 0.5 s at the same throughput
// (docs/performance.md). So at
// most `max` connections are in their handshake at a time; the rest wait,
// unread, in arrival order (their TCP connection is open, the client just
// sees a slow server). Connected agents and admin requests are never queued.
//
// A handshake that has not authenticated within `deadlineMs` is cut, so a
// client that connects and goes silent cannot hold a slot (or, before this,
// a socket) forever.
import type { Duplex } from 'node:stream';

const RELEASE = Symbol('bento.handshake-release');

type Stream = Duplex & { [RELEASE]?: () => void };

export class HandshakeGate {
  private active = 0;
  private queue: Stream[] = [];

  constructor(
    private readonly max: number,
    private readonly deadlineMs: number,
    private readonly start: (stream: Duplex) => void,
  ) {}

  /** A new connection: start its handshake now, or when a slot frees. */
  admit(stream: Duplex): void {
    // While it waits nobody else listens for errors (a reset from the peer).
    stream.on('error', () => undefined);
    if (this.active < this.max) this.begin(stream);
    else this.queue.push(stream);
  }

  /** Connections waiting for a slot (for tests and metrics). */
  get waiting(): number {
    return this.queue.length;
  }

  private begin(stream: Stream): void {
    this.active++;
    let done = false;
    const timer = setTimeout(() => stream.destroy(), this.deadlineMs);
    timer.unref();
    const release = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.active--;
      this.next();
    };
    stream[RELEASE] = release;
    stream.once('close', release);
    this.start(stream);
  }

  private next(): void {
    while (this.active < this.max && this.queue.length > 0) {
      const s = this.queue.shift()!;
      if (!s.destroyed) this.begin(s);
    }
  }

  /** Drop every waiting connection (hub shutdown). */
  dropWaiting(): void {
    const q = this.queue;
    this.queue = [];
    for (const s of q) s.destroy();
  }
}

/** The connection authenticated: its handshake slot goes to the next one. */
export function handshakeDone(stream: unknown): void {
  (stream as Stream | undefined)?.[RELEASE]?.();
}
