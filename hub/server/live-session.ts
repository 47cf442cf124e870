// One authenticated agent connection as the rest of the hub sees it. Kept
// small on purpose: thousands of these live at once (see docs/performance.md),
// so no per-session timers and no per-session loggers are created here.
import type { Connection, ServerChannel } from 'ssh2';
import { encodeLine } from '../../common/protocol/codec.js';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import type { ErrorCode } from '../../common/protocol/errors.js';
import type { InboundGate } from './inbound-gate.js';
import type { OutboundWaiter } from './outbound-guard.js';

let nextId = 1;
const NO_FORWARDS: readonly string[] = Object.freeze([]);

export interface SessionOrigin {
  carrier: 'ssh' | 'ws';
  /** The hub listener the agent came through, e.g. "ssh://0.0.0.0:2222". */
  endpoint: string;
  remoteAddress: string;
}

export class LiveSession {
  readonly id = nextId++;
  readonly connectedSince = Date.now();
  lastInbound = Date.now();
  hello: Hello | null = null;
  channel: ServerChannel | null = null;
  /**
   * Reverse forwards the agent offered ("127.0.0.1:22"), no port is bound on
   * the hub. Replaced, never grown in place: an agent offers one or two, and
   * an exact-size array is 40 B where a Set is ~170 B and a pushed-to array
   * reserves 17 slots (docs/performance.md).
   */
  forwards: readonly string[] = NO_FORWARDS;
  /** Its control channel's inbound limits (inbound-gate.ts), once it has one. */
  inbound: InboundGate | null = null;
  /** Its connection's output (outbound-guard.ts): writers that can wait, wait for it to drain. */
  outbound: OutboundWaiter | null = null;
  closed = false;

  constructor(
    readonly name: string,
    readonly conn: Connection,
    readonly origin: SessionOrigin,
  ) {}

  /** Queue a message on the control channel; false if there is none. */
  send(msg: HubMessage): boolean {
    if (!this.channel || this.closed) return false;
    this.channel.write(encodeLine(msg));
    return true;
  }

  /** Tell the agent why (best effort), then drop the whole connection. */
  close(code: ErrorCode, message: string): void {
    if (this.closed) return;
    this.send({ type: 'error', code, message });
    this.closed = true;
    // Give the error line a moment to leave, then end; a half-dead peer that
    // never completes the close is cut at the socket a second later.
    setTimeout(() => this.conn.end(), 50).unref();
    setTimeout(() => this.destroySocket(), 1000).unref();
  }

  /** Cut the transport at once (dead peers, hub shutdown). */
  destroySocket(): void {
    const sock = (this.conn as unknown as { _sock?: { destroy(): void } })._sock;
    sock?.destroy();
  }
}
