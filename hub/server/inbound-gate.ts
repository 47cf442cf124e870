// Per-session inbound limits with SSH flow control (issue 13 part 2). An
// agent's messages are handled one at a time per host (jobs/per-host-queue),
// some behind a durable write; a host that sends faster than that (a
// compromised host inventing jobs, 256 KiB of output each) used to pile its
// messages up in the hub's memory without bound.
//
// Now each session counts the messages it read but the hub has not finished
// with, and their bytes. Over sessionQueuedMessages or sessionQueuedBytes the
// control channel is paused; it resumes once both are back under half. A
// paused ssh2 channel keeps what arrives in its read buffer, and once that
// holds its high-water mark (2 MiB) ssh2 stops extending the channel's SSH
// window, so a well-behaved peer (OpenSSH, ssh2, the agent) has its writes
// block: at most its window (2 MiB) more arrives. A peer that ignores the
// window (ssh2 accepts a packet that overshoots it, and then every later one)
// is cut once the channel holds sessionOverrunBytes.
import type { Logger } from '../../common/platform/log.js';
import { LogThrottle } from '../../common/platform/log-throttle.js';

export interface SessionLimits {
  /** Messages from one agent read but not handled yet; more pause its control channel. */
  sessionQueuedMessages: number;
  /** Bytes of those messages. */
  sessionQueuedBytes: number;
  /** Bytes a paused control channel may hold (a peer that respects the SSH window sends at most ~4 MiB); more cut the connection. */
  sessionOverrunBytes: number;
}

export const SESSION_DEFAULTS: Readonly<SessionLimits> = Object.freeze({
  sessionQueuedMessages: 256,
  sessionQueuedBytes: 4 * 1024 * 1024,
  sessionOverrunBytes: 8 * 1024 * 1024,
});

export const SESSION_RANGES: Record<keyof SessionLimits, [number, number]> = {
  sessionQueuedMessages: [2, 1_000_000],
  sessionQueuedBytes: [128 * 1024, 1024 * 1024 * 1024],
  sessionOverrunBytes: [6 * 1024 * 1024, 1024 * 1024 * 1024],
};

/** The part of an ssh2 channel the gate drives. */
export interface PausableChannel {
  pause(): unknown;
  resume(): unknown;
  readonly readableLength: number;
}

/** Counts and log lines for every session of one hub (metrics: hub/metrics/limits-metrics.ts). */
export class InboundMonitor {
  /** Times a session's control channel was paused, and sessions paused now. */
  throttledTotal = 0;
  throttledNow = 0;
  /** Connections cut for ignoring the window. */
  overrunTotal = 0;
  private readonly throttle: LogThrottle;

  constructor(readonly limits: SessionLimits, log: Logger) {
    this.throttle = new LogThrottle(log);
  }

  /** A gate for one session's control channel; `cut` ends the connection. */
  gate(host: string, channel: PausableChannel, cut: (message: string) => void): InboundGate {
    return new InboundGate(host, channel, this, cut);
  }

  /** @internal */ paused(host: string, messages: number, bytes: number): void {
    this.throttledTotal++;
    this.throttledNow++;
    this.throttle.warn('throttled', { source: host, host, messages, bytes },
      'agent sends faster than the hub handles its messages: stopped reading its control channel (SSH flow control) until it catches up');
  }

  /** @internal */ resumed(): void {
    this.throttledNow--;
  }

  /** @internal */ overrun(host: string, bytes: number): void {
    this.overrunTotal++;
    this.throttle.warn('overrun', { source: host, host, bytes },
      'agent kept sending after the hub stopped reading its control channel (it ignores the SSH window): cutting its connection');
  }

  close(): void {
    this.throttle.close();
  }
}

export class InboundGate {
  private messages = 0;
  private bytes = 0;
  private paused = false;
  private done = false;

  constructor(
    private readonly host: string,
    private readonly channel: PausableChannel,
    private readonly monitor: InboundMonitor,
    private readonly cut: (message: string) => void,
  ) {}

  /** A message of `bytes` was read; call the returned function once the hub is done with it. */
  take(bytes: number): () => void {
    this.messages++;
    this.bytes += bytes;
    const l = this.monitor.limits;
    if (!this.paused && !this.done && (this.messages > l.sessionQueuedMessages || this.bytes > l.sessionQueuedBytes)) {
      this.paused = true;
      this.channel.pause();
      this.monitor.paused(this.host, this.messages, this.bytes);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.messages--;
      this.bytes -= bytes;
      if (this.paused && this.messages <= l.sessionQueuedMessages / 2 && this.bytes <= l.sessionQueuedBytes / 2) this.resume();
    };
  }

  /** After bytes arrived on the connection: a paused channel that keeps filling belongs to a peer ignoring the window. */
  check(): void {
    if (!this.paused || this.done) return;
    const held = this.channel.readableLength;
    if (held <= this.monitor.limits.sessionOverrunBytes) return;
    this.close();
    this.monitor.overrun(this.host, held);
    this.cut(`sent ${held} bytes the hub had not asked for (it stopped reading the control channel; the SSH window was not extended)`);
  }

  /** The session ended: nothing to resume. */
  close(): void {
    if (this.done) return;
    this.done = true;
    if (this.paused) this.monitor.resumed();
    this.paused = false;
  }

  private resume(): void {
    this.paused = false;
    this.monitor.resumed();
    this.channel.resume();
  }
}
