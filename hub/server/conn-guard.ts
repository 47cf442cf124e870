// What one authenticated connection may hold on the hub (limits in
// conn-limits.ts). Only a connection that said hello enters the
// SessionRegistry (sessions.ts), whose liveness sweep and "a newer connection
// replaces the old one" bound a host to one session; before this, a host's
// key could keep any number of connections that never said hello, open any
// number of channels on each (50,000 opens: +63 MiB) and register any number
// of reverse forwards. Here every authenticated connection is counted per
// host, must say hello (or use SFTP, as a pull-mode agent's own connection
// does) within a deadline, and has its channels counted.
import type { Logger } from '../../common/platform/log.js';
import { LogThrottle } from '../../common/platform/log-throttle.js';
import type { ConnLimits } from './conn-limits.js';
import type { LiveSession } from './live-session.js';

interface ConnState {
  readonly session: LiveSession;
  /** Channels the peer opened and has not closed (the hub's own forwardOut channels are not counted). */
  channels: number;
  /** Of those, session channels that asked for SFTP: exempt from the hello deadline. */
  sftp: number;
  timer: NodeJS.Timeout | null;
}

export interface ConnectionGuardOptions {
  limits: ConnLimits;
  log: Logger;
}

export class ConnectionGuard {
  private readonly conns = new WeakMap<object, ConnState>();
  /** Authenticated connections per host, oldest first. */
  private readonly byHost = new Map<string, ConnState[]>();
  /**
   * Warn lines about what peers ask for and are refused (channels, requests,
   * subsystems, forwards): one per attempt would be one per attacker packet,
   * so at most 5 per kind every 10 s and a summary.
   */
  readonly refusals: LogThrottle;

  constructor(private readonly o: ConnectionGuardOptions) {
    this.refusals = new LogThrottle(o.log);
  }

  get limits(): ConnLimits {
    return this.o.limits;
  }

  /** `conn` authenticated as `session`: counted for its host (past the cap its oldest connection goes) and on a hello deadline. */
  admit(conn: object, session: LiveSession): void {
    const st: ConnState = { session, channels: 0, sftp: 0, timer: null };
    this.conns.set(conn, st);
    const list = this.byHost.get(session.name) ?? [];
    list.push(st);
    this.byHost.set(session.name, list);
    const live = list.filter((x) => !x.session.closed);
    if (live.length > this.o.limits.connectionsPerHost) {
      // The newest is the one most likely in use (an agent reconnects when it
      // takes the old connection for dead); one that never said hello goes first.
      const victim = live.find((x) => x !== st && !x.session.hello) ?? live.find((x) => x !== st)!;
      this.refusals.warn('connections', { source: session.name, host: session.name, connections: live.length, limit: this.o.limits.connectionsPerHost },
        'more authenticated connections of this host than limits.connectionsPerHost: cutting its oldest');
      victim.session.close('REPLACED', `more than ${this.o.limits.connectionsPerHost} connections of this host at once: a newer one replaced this one`);
    }
    this.arm(st);
  }

  /** The session of an authenticated connection. */
  sessionOf(conn: object): LiveSession | undefined {
    return this.conns.get(conn)?.session;
  }

  /** A channel the peer opens on `conn`: null (refuse it) at channelsPerConnection; else call the result once it closes. */
  channel(conn: object, kind: string): (() => void) | null {
    const st = this.conns.get(conn);
    if (!st) return null;
    if (st.channels >= this.o.limits.channelsPerConnection) {
      this.refusals.warn('channels', { source: st.session.name, host: st.session.name, kind, limit: this.o.limits.channelsPerConnection },
        'refused channel: the connection has limits.channelsPerConnection open');
      return null;
    }
    st.channels++;
    let open = true;
    return () => { if (open) { open = false; st.channels--; } };
  }

  /** A session channel of `conn` carries SFTP: exempt from the hello deadline; call the result once it closes. */
  sftp(conn: object): () => void {
    const st = this.conns.get(conn);
    if (!st) return () => undefined;
    st.sftp++;
    let open = true;
    return () => { if (open) { open = false; st.sftp--; } };
  }

  /** The connection closed. */
  left(conn: object): void {
    const st = this.conns.get(conn);
    if (!st) return;
    this.conns.delete(conn);
    if (st.timer) clearTimeout(st.timer);
    st.timer = null;
    const list = this.byHost.get(st.session.name);
    const rest = list?.filter((x) => x !== st) ?? [];
    if (rest.length > 0) this.byHost.set(st.session.name, rest);
    else this.byHost.delete(st.session.name);
  }

  close(): void {
    this.refusals.close();
  }

  /** One timer per connection until its deadline; re-armed while it holds SFTP without a hello. */
  private arm(st: ConnState): void {
    const ms = this.o.limits.helloTimeoutMs;
    st.timer = setTimeout(() => {
      st.timer = null;
      const s = st.session;
      if (s.closed || s.hello) return;
      if (st.sftp > 0) return this.arm(st);
      this.refusals.warn('no-hello', { source: s.name, host: s.name, remote: s.origin.remoteAddress, limitMs: ms },
        'authenticated connection said no hello and opened no SFTP within limits.helloTimeoutMs: cutting it');
      s.close('PROTOCOL_STATE', `no hello within ${ms} ms of authenticating`);
    }, ms);
    st.timer.unref();
  }
}
