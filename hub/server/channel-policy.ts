// What an agent may open inside its SSH connection: the control subsystem,
// and (through the hub's own handlers) sftp and the reverse forward of its
// sshd. Everything else (shell, exec, pty, X11, agent forwarding, direct-tcpip,
// streamlocal) is refused and logged once per attempt. The one exception to
// direct-tcpip: a destination that is a service NAME in hub.json "services"
// (hub/services/allow-list.ts), e.g. the binary cache.
import type { Connection, ServerChannel, Session, TcpipRequestInfo } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import { serveDirectTcpip, type ServiceMap } from '../services/allow-list.js';
import type { OutboundWaiter } from './outbound-guard.js';

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

  constructor(log: Logger, services: ServiceMap = {}) {
    const hosts = this.hosts;
    const outbounds = this.outbounds;
    this.sessionHandlers = REFUSED_SESSION_REQUESTS.map((ev) => [ev, function (this: object, _accept: unknown, reject?: () => void): void {
      log.warn({ host: hosts.get(this) ?? '?', request: ev }, 'refused session request');
      // Every one of these events is (accept?, reject?, info?); reject is absent when the client wants no reply.
      if (typeof reject === 'function') reject();
    }]);
    this.onTcpip = function (this: object, accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo): void {
      const host = hosts.get(this);
      // Only a hub service named in hub.json "services" (hub/services/allow-list.ts); the agent names it, never an address.
      if (serveDirectTcpip(services, info, accept, reject, log, host ?? '', outbounds.get(this) ?? null)) return;
      log.warn({ host: host ?? '(unauthenticated)', dest: `${info.destIP}:${info.destPort}` }, 'refused direct-tcpip channel');
      reject();
    };
    this.onStreamlocal = function (this: object, _accept: unknown, reject?: () => void): void {
      log.warn({ host: hosts.get(this) ?? '(unauthenticated)' }, 'refused streamlocal channel');
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
