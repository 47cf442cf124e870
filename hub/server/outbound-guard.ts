// What the hub has written to one agent connection and the kernel has not
// taken yet, bounded. ssh2 hands every packet straight to the socket
// (socket.write, return value ignored), and its channels and SFTP wait only
// for the SSH window, which the peer sets itself (CHANNEL_OPEN, WINDOW_ADJUST)
// without reading a byte. So a peer that stops reading TCP and grants a huge
// window made the hub buffer without bound: 178 KB of pipelined 29-byte SFTP
// READ requests for 64 KiB each took the hub's RSS up by 535 MiB in 6 s.
//
// Every write to the connection's stream is checked here (not on a timer: the
// buffer can grow by megabytes between two ticks). Past
// limits.sessionOutboundBytes the connection is cut with OUTBOUND_OVERRUN: the
// peer is not reading, so an error message would never reach it. Below that,
// the writers that can wait (SFTP replies, service channels, the control
// channel's answers) wait for the stream's 'drain' (needsDrain/drained), so an
// honest agent on a slow link stays far from the limit.
import type { Logger } from '../../common/platform/log.js';
import { LogThrottle } from '../../common/platform/log-throttle.js';

/** The part of a connection's stream (net.Socket, the WebSocket carrier's Duplex) the guard needs. */
export interface OutboundStream {
  write(...args: unknown[]): boolean;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  readonly destroyed: boolean;
  destroy(): void;
  once(ev: 'drain' | 'close', fn: () => void): unknown;
  off(ev: 'drain' | 'close', fn: () => void): unknown;
}

/** What a writer that can wait sees of its connection. */
export interface OutboundWaiter {
  /** The connection holds more than its stream's high-water mark: wait before writing more. */
  needsDrain(): boolean;
  /** Resolves once the stream drained, or closed. */
  drained(): Promise<void>;
  /** Cut the connection now, as over its limit (OUTBOUND_OVERRUN): a writer saw the peer ask for ever more while reading nothing. */
  cutNow(): void;
}

/** Counts and log lines for every agent connection of one hub. */
export class OutboundMonitor {
  /** Connections cut because the agent did not read what the hub sent. */
  overrunTotal = 0;
  private readonly throttle: LogThrottle;

  constructor(private readonly limitBytes: () => number, log: Logger) {
    this.throttle = new LogThrottle(log);
  }

  /** Watch every write to HOST's connection STREAM from now on. */
  guard(host: string, stream: OutboundStream): OutboundGuard {
    return new OutboundGuard(host, stream, this.limitBytes(), this);
  }

  /** @internal */ overrun(host: string, held: number, limit: number): void {
    this.overrunTotal++;
    this.throttle.warn('outbound-overrun', { source: host, host, code: 'OUTBOUND_OVERRUN', bytes: held, limit },
      `agent does not read what the hub sends (${held} bytes waiting on its connection, over limits.sessionOutboundBytes): cutting its connection`);
  }

  close(): void {
    this.throttle.close();
  }
}

export class OutboundGuard implements OutboundWaiter {
  private cut = false;
  private waiting: Promise<void> | null = null;

  constructor(private readonly host: string, private readonly stream: OutboundStream, private readonly limit: number, private readonly monitor: OutboundMonitor) {
    const guard = this;
    const original = stream.write;
    // An own property on this one stream (ssh2 calls stream.write for every
    // packet); banner.ts does the same for the repeated greeting.
    stream.write = function (this: OutboundStream, ...args: unknown[]): boolean {
      const ok = original.apply(this, args);
      if (this.writableLength > limit) guard.cutNow();
      return ok;
    };
  }

  cutNow(): void {
    if (this.cut) return;
    this.cut = true;
    this.monitor.overrun(this.host, this.stream.writableLength, this.limit);
    // Destroying frees what waits in the stream at once; ssh2 sees a socket close.
    this.stream.destroy();
  }

  needsDrain(): boolean {
    return this.stream.writableNeedDrain && !this.stream.destroyed;
  }

  drained(): Promise<void> {
    if (!this.needsDrain()) return Promise.resolve();
    // One promise per drain cycle, however many writers wait on it.
    this.waiting ??= new Promise<void>((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        this.waiting = null;
        resolve();
      };
      this.stream.once('drain', done);
      this.stream.once('close', done);
    });
    return this.waiting;
  }
}
