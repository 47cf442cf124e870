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
//
// The same pause holds a session to sessionBytesPerSecond on average (a token
// bucket of sessionBurstBytes): what one host sends costs the hub's one
// thread CPU and, through the garbage collector and the allocator, memory in
// proportion to its rate; a host flooding at network speed (85 MB/s on
// loopback) took ~90 MiB of transient RSS and a share of every other host's
// trigger latency. Agents print build logs at KB/s; a replayed outbox is a
// burst of about 1 MB.
import type { Logger } from '../../common/platform/log.js';
import { LogThrottle } from '../../common/platform/log-throttle.js';

export interface SessionLimits {
  /** Messages from one agent read but not handled yet; more pause its control channel. */
  sessionQueuedMessages: number;
  /** Bytes of those messages. */
  sessionQueuedBytes: number;
  /** Bytes a paused control channel may hold (a peer that respects the SSH window sends at most ~4 MiB); more cut the connection. */
  sessionOverrunBytes: number;
  /** Bytes the hub has written to one agent's connection that it has not read yet (outbound-guard.ts); more cut the connection. */
  sessionOutboundBytes: number;
  /** Bytes per second one agent may send on its control channel, on average; faster pauses its reading. */
  sessionBytesPerSecond: number;
  /** Bytes it may send at once above that rate (a burst: a replayed outbox, a chatty build). */
  sessionBurstBytes: number;
}

export const SESSION_DEFAULTS: Readonly<SessionLimits> = Object.freeze({
  sessionQueuedMessages: 64,
  sessionQueuedBytes: 1024 * 1024,
  sessionOverrunBytes: 8 * 1024 * 1024,
  // Honest writers wait for the socket to drain (SFTP, services, control answers); what is left is a
  // packet or a chunk per channel, or one secrets bundle (at most ~1.4 MiB).
  sessionOutboundBytes: 8 * 1024 * 1024,
  sessionBytesPerSecond: 1024 * 1024,
  sessionBurstBytes: 4 * 1024 * 1024,
});

export const SESSION_RANGES: Record<keyof SessionLimits, [number, number]> = {
  sessionQueuedMessages: [2, 1_000_000],
  sessionQueuedBytes: [128 * 1024, 1024 * 1024 * 1024],
  sessionOverrunBytes: [6 * 1024 * 1024, 1024 * 1024 * 1024],
  sessionOutboundBytes: [2 * 1024 * 1024, 1024 * 1024 * 1024],
  sessionBytesPerSecond: [64 * 1024, 1024 * 1024 * 1024],
  sessionBurstBytes: [64 * 1024, 1024 * 1024 * 1024],
};

/** The part of an ssh2 channel the gate drives. */
export interface PausableChannel {
  pause(): unknown;
  resume(): unknown;
  readonly readableLength: number;
}

/** Counts and log lines for every session of one hub (metrics: hub/metrics/limits-metrics.ts). */
export class InboundMonitor {
  /** Times a session's control channel was paused (by what paused it first), and sessions paused now. */
  readonly throttledTotal: Record<ThrottleReason, number> = { queue: 0, rate: 0 };
  throttledNow = 0;
  /** Connections cut for ignoring the window. */
  overrunTotal = 0;
  private readonly throttle: LogThrottle;

  constructor(readonly limits: SessionLimits, log: Logger) {
    this.throttle = new LogThrottle(log);
  }

  /**
   * A gate for one session's control channel. Over the overrun limit it closes
   * the session; every `awakeMs` while reading is paused it sends the agent a
   * heartbeat (an agent that judges the hub by echoes of its own heartbeats
   * would otherwise see none while they wait in the channel).
   */
  gate(session: GatedSession, channel: PausableChannel, awakeMs: number): InboundGate {
    return new InboundGate(session, channel, this, awakeMs);
  }

  /** @internal */ paused(host: string, why: ThrottleReason, messages: number, bytes: number): void {
    this.throttledTotal[why]++;
    this.throttledNow++;
    const what = why === 'queue'
      ? 'agent sends faster than the hub handles its messages (limits.sessionQueuedMessages/sessionQueuedBytes)'
      : 'agent sends more than limits.sessionBytesPerSecond';
    this.throttle.warn(`throttled-${why}`, { source: host, host, reason: why, messages, bytes },
      `${what}: stopped reading its control channel (SSH flow control) until it catches up`);
  }

  /** @internal */ resumed(): void {
    this.throttledNow--;
  }

  /** @internal */ overrun(host: string, bytes: number, channel = 'control'): void {
    this.overrunTotal++;
    this.throttle.warn(`overrun-${channel}`, { source: host, host, bytes, channel },
      `agent kept sending after the hub stopped reading its ${channel} channel (it ignores the SSH window): cutting its connection`);
  }

  /**
   * The same overrun limit for any other channel the hub may stop reading:
   * a service channel piped into a slow service (hub/services/allow-list.ts),
   * an admin proxy channel piped into a slow admin (hub/admin/proxy.ts).
   * ssh2 drops a packet only when the window is exactly 0, so a peer that
   * overshoots it once gets every later packet buffered; those channels have
   * no gate, and the connection's byte feed does not know them. ssh2 hands
   * every packet to push(), so the check sits there. Past the limit the
   * connection is cut (INBOUND_OVERRUN) and what still arrives on the channel
   * is dropped.
   */
  guard(channel: PushableChannel, session: GatedSession, what: string): void {
    const limit = this.limits.sessionOverrunBytes;
    const push = channel.push.bind(channel);
    let cut = false;
    channel.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (cut) return chunk === null ? push(chunk) : false;
      const ok = push(chunk, encoding);
      const held = channel.readableLength;
      if (held > limit) {
        cut = true;
        this.overrun(session.name, held, what);
        session.close('INBOUND_OVERRUN', `sent ${held} bytes on a ${what} channel the hub had not asked for (the SSH window was not extended)`);
      }
      return ok;
    };
  }

  close(): void {
    this.throttle.close();
  }
}

/** A channel as ssh2 feeds it: each packet through push(). */
export interface PushableChannel {
  push(chunk: unknown, encoding?: BufferEncoding): boolean;
  readonly readableLength: number;
}

export type ThrottleReason = 'queue' | 'rate';

/** What a gate needs of its session (a LiveSession). */
export interface GatedSession {
  readonly name: string;
  send(msg: { type: 'heartbeat'; seq: number }): unknown;
  close(code: 'INBOUND_OVERRUN', message: string): void;
}

// Why reading is paused, as bits: one number per session instead of a Set (~170 B each).
const QUEUE = 1;
const RATE = 2;
const BIT: Record<ThrottleReason, number> = { queue: QUEUE, rate: RATE };

// One per connected host: only numbers and the references it needs (no
// options object, no closures, no Set; timers only while it is over a limit).
export class InboundGate {
  private messages = 0;
  private bytes = 0;
  /** Why reading is paused now (QUEUE | RATE bits): its messages wait, or it used up its byte rate. */
  private why = 0;
  private done = false;
  /** Token bucket of sessionBytesPerSecond with sessionBurstBytes: bytes it may still send now. */
  private tokens: number;
  private refilledAt = Date.now();
  private rateTimer: NodeJS.Timeout | null = null;
  private awakeTimer: NodeJS.Timeout | null = null;
  private pausedAt = 0;

  constructor(
    private readonly session: GatedSession,
    private readonly channel: PausableChannel,
    private readonly monitor: InboundMonitor,
    private readonly awakeMs: number,
  ) {
    this.tokens = monitor.limits.sessionBurstBytes;
  }

  /** Every line read from the channel is charged to the session's byte rate. */
  charge(bytes: number): void {
    if (this.done) return;
    this.refill();
    this.tokens -= bytes;
    if (this.tokens < 0 && !(this.why & RATE)) {
      this.pause('rate');
      this.armRate();
    }
  }

  /** A message of `bytes` was read; call the returned function once the hub is done with it. */
  take(bytes: number): () => void {
    this.messages++;
    this.bytes += bytes;
    const l = this.monitor.limits;
    if (!(this.why & QUEUE) && !this.done && (this.messages > l.sessionQueuedMessages || this.bytes > l.sessionQueuedBytes)) this.pause('queue');
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.messages--;
      this.bytes -= bytes;
      if ((this.why & QUEUE) !== 0 && this.messages <= l.sessionQueuedMessages / 2 && this.bytes <= l.sessionQueuedBytes / 2) this.unpause('queue');
    };
  }

  /** After bytes arrived on the connection: a paused channel that keeps filling belongs to a peer ignoring the window. */
  check(): void {
    if (this.why === 0 || this.done) return;
    const held = this.channel.readableLength;
    if (held <= this.monitor.limits.sessionOverrunBytes) return;
    this.close();
    this.monitor.overrun(this.session.name, held);
    this.session.close('INBOUND_OVERRUN', `sent ${held} bytes the hub had not asked for (it stopped reading the control channel; the SSH window was not extended)`);
  }

  /** Another channel of this session the hub may pause (an admin proxy's): the same overrun cut (InboundMonitor.guard). */
  guard(channel: PushableChannel, what: string): void {
    this.monitor.guard(channel, this.session, what);
  }

  /** The session ended: nothing to resume. */
  close(): void {
    if (this.done) return;
    this.done = true;
    if (this.rateTimer) clearTimeout(this.rateTimer);
    this.rateTimer = null;
    if (this.awakeTimer) clearInterval(this.awakeTimer);
    this.awakeTimer = null;
    if (this.why !== 0) this.monitor.resumed();
    this.why = 0;
  }

  private refill(): void {
    const now = Date.now();
    const l = this.monitor.limits;
    this.tokens = Math.min(l.sessionBurstBytes, this.tokens + ((now - this.refilledAt) * l.sessionBytesPerSecond) / 1000);
    this.refilledAt = now;
  }

  /** A timer only while the session is over its rate: idle and well-behaved sessions have none. */
  private armRate(): void {
    const wait = Math.ceil((-this.tokens * 1000) / this.monitor.limits.sessionBytesPerSecond);
    this.rateTimer = setTimeout(() => {
      this.rateTimer = null;
      if (this.done) return;
      this.refill();
      if (this.tokens >= 0) this.unpause('rate');
      else this.armRate();
    }, Math.max(1, wait));
    this.rateTimer.unref();
  }

  private pause(why: ThrottleReason): void {
    if (this.done) return;
    const was = this.why;
    this.why |= BIT[why];
    if (was !== 0) return;
    this.channel.pause();
    this.monitor.paused(this.session.name, why, this.messages, this.bytes);
    this.pausedAt = Date.now();
    // While it keeps pausing (a rate limit pauses it many times a second) and one period after.
    if (!this.awakeTimer) {
      this.awakeTimer = setInterval(() => {
        if (this.why !== 0) this.pausedAt = Date.now();
        if (Date.now() - this.pausedAt <= this.awakeMs && !this.done) return void this.session.send({ type: 'heartbeat', seq: 0 });
        clearInterval(this.awakeTimer!);
        this.awakeTimer = null;
      }, this.awakeMs);
      this.awakeTimer.unref();
    }
  }

  private unpause(why: ThrottleReason): void {
    const bit = BIT[why];
    if (!(this.why & bit)) return;
    this.why &= ~bit;
    if (this.why !== 0 || this.done) return;
    this.monitor.resumed();
    this.channel.resume();
  }
}
