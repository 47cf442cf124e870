// What an agent may open inside its SSH connection: the control subsystem,
// and (through the hub's own handlers) sftp and the reverse forward of its
// sshd. Everything else (shell, exec, pty, X11, agent forwarding, direct-tcpip,
// streamlocal) is refused and logged once per attempt. The one exception to
// direct-tcpip: a destination that is a service NAME in hub.json "services"
// (hub/services/allow-list.ts), e.g. the binary cache.
import type { Connection, ServerChannel, Session, TcpipRequestInfo } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import type { LogThrottle } from '../../common/platform/log-throttle.js';
import { printable } from '../../common/protocol/names.js';
import { serveDirectTcpip, type ServiceMap } from '../services/allow-list.js';
import type { OutboundWaiter } from './outbound-guard.js';

/** What the policy needs of the connection guard (conn-guard.ts) and the inbound monitor (inbound-gate.ts). */
export interface ChannelPolicyOptions {
  log: Logger;
  /** Allow-listed hub services (hub.json "services"); default none. */
  services?: ServiceMap;
  /** Refusals are logged through this (per kind, rate-limited): a peer can ask thousands of times a second. */
  refusals: LogThrottle;
  /** Count a service channel the peer opens on `conn`: null refuses it (conn-guard.ts). */
  channel(conn: object, kind: string): (() => void) | null;
  /** Cut the connection if it overruns this (paused) service channel (inbound-gate.ts guard()). */
  guard(conn: object, ch: ServerChannel): void;
}

const REFUSED_SESSION_REQUESTS = ['pty', 'shell', 'exec', 'x11', 'auth-agent', 'env', 'signal', 'window-change', 'sftp'] as const;

type Refusal = (this: object, accept: unknown, reject?: () => void) => void;

/**
 * The policy for every connection and session of one server. Its listeners
 * are made once, here, and shared by all (ssh2 calls them with the
 * connection or session as `this`); the host is looked up. One closure per
 * event per connection was 11 closures and their contexts on every
 * connected host, ~1 KB (docs/performance.md).
 */
export class ChannelPolicy {
  /** Connection or session -> its host, once authenticated. */
  private readonly hosts = new WeakMap<object, string>();
  /** Connection -> its output bound, once authenticated: service channels wait for it to drain. */
  private readonly outbounds = new WeakMap<object, OutboundWaiter>();
  private readonly sessionHandlers: ReadonlyArray<[string, Refusal]>;
  private readonly onTcpip: (this: object, accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo) => void;
  private readonly onStreamlocal: Refusal;

  constructor(o: ChannelPolicyOptions) {
    const hosts = this.hosts;
    const outbounds = this.outbounds;
    const { log, refusals } = o;
    const services = o.services ?? {};
    // A service that is down refuses every open: one line per attempt would be the peer's to multiply.
    const serviceLog = {
      debug: (f: object, m: string): void => log.debug(f, m),
      warn: (f: object, m: string): void => refusals.warn('service-unreachable', { source: String((f as { host?: unknown }).host ?? '?'), ...f }, m),
    };
    this.sessionHandlers = REFUSED_SESSION_REQUESTS.map((ev) => [ev, function (this: object, _accept: unknown, reject?: () => void): void {
      const host = hosts.get(this) ?? '?';
      refusals.warn(`session-${ev}`, { source: host, host, request: ev }, 'refused session request');
      // Every one of these events is (accept?, reject?, info?); reject is absent when the client wants no reply.
      if (typeof reject === 'function') reject();
    }]);
    this.onTcpip = function (this: object, accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo): void {
      const conn = this;
      const host = hosts.get(conn);
      // Counted like every channel the peer opens, while the hub connects to the service too.
      const done = host ? o.channel(conn, 'direct-tcpip') : null;
      if (host && !done) return reject();
      const opened = (): ServerChannel => { const ch = accept(); ch.once('close', done!); o.guard(conn, ch); return ch; };
      // Only a hub service named in hub.json "services" (hub/services/allow-list.ts); the agent names it, never an address.
      if (done && serveDirectTcpip(services, info, opened, () => { done(); reject(); }, serviceLog, host ?? '', outbounds.get(conn) ?? null)) return;
      done?.();
      const who = host ?? '(unauthenticated)';
      refusals.warn('direct-tcpip', { source: who, host: who, dest: `${printable(String(info.destIP), 64)}:${Number(info.destPort)}` }, 'refused direct-tcpip channel');
      reject();
    };
    this.onStreamlocal = function (this: object, _accept: unknown, reject?: () => void): void {
      const who = hosts.get(this) ?? '(unauthenticated)';
      refusals.warn('streamlocal', { source: who, host: who }, 'refused streamlocal channel');
      reject?.();
    };
  }

  /** From the start of a connection: direct-tcpip (but to allowed services) and streamlocal are refused. */
  connection(conn: Connection): void {
    conn.on('tcpip', this.onTcpip);
    conn.on('openssh.streamlocal', this.onStreamlocal as (accept: unknown, reject: () => void) => void);
  }

  /** The connection authenticated as `host` (for the log lines and the services' access check). */
  authenticated(conn: Connection, host: string): void {
    this.hosts.set(conn, host);
  }

  /** The connection's output bound (outbound-guard.ts), for the service channels it opens. */
  outbound(conn: Connection, waiter: OutboundWaiter | null): void {
    if (waiter) this.outbounds.set(conn, waiter);
  }

  /** Refuse every request of `session` (of `host`) but the `allowed` ones, which have handlers of their own. */
  session(session: Session, host: string, allowed: readonly string[] = []): void {
    this.hosts.set(session, host);
    for (const [ev, handler] of this.sessionHandlers) {
      if (!allowed.includes(ev)) (session as unknown as NodeJS.EventEmitter).on(ev, handler);
    }
  }
}
