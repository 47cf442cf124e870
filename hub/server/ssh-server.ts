// The hub's SSH endpoint for agents (ssh2 server). It owns connection
// lifecycle only: authentication, the channel policy, and handing a live
// session to the hooks. TCP listeners call listen(); other carriers (the
// WebSocket listener) hand their streams to inject().
import ssh2 from 'ssh2';
import type { Connection, ClientInfo as SshClientInfo } from 'ssh2';
import type { Duplex } from 'node:stream';
import net, { type AddressInfo } from 'node:net';
import { CONTROL_SUBSYSTEM } from '../../common/protocol/version.js';
import type { Logger } from '../../common/platform/log.js';
import type { RegistryView } from '../fleet/registry.js';
import { authenticate, MAX_AUTH_FAILURES } from './auth.js';
import { hostKeyForServer } from './fast-keys.js';
import { AdmissionGate, type Ticket } from './admission.js';
import { DEFAULT_LIMITS, type AdmissionLimits } from './admission-limits.js';
import { skipRepeatedGreeting } from './banner.js';
import { ChannelPolicy } from './channel-policy.js';
import type { ServiceMap } from '../services/allow-list.js';
import { attachControl, type ControlHooks } from './control.js';
import { InboundMonitor, SESSION_DEFAULTS, type SessionLimits } from './inbound-gate.js';
import { LiveSession, type SessionOrigin } from './live-session.js';
import { OutboundMonitor, type OutboundStream } from './outbound-guard.js';
import { ConnectionGuard } from './conn-guard.js';
import { CONN_DEFAULTS, type ConnLimits } from './conn-limits.js';
import { printable } from '../../common/protocol/names.js';

const ORIGIN = Symbol('bento.origin');

export interface AgentServerHooks extends ControlHooks {
  onClose(session: LiveSession): void;
  /** The host's SFTP jail; without it, sftp is refused like any other subsystem. */
  onSftp?(session: LiveSession, accept: () => import('ssh2').SFTPWrapper): void;
  /** Extra subsystems (the secrets delivery, hub/secrets/); return false to refuse. */
  onSubsystem?(session: LiveSession, name: string, accept: () => import('ssh2').ServerChannel): boolean;
}

export interface AgentServerOptions {
  hostKey: Buffer;
  registry: RegistryView;
  hooks: AgentServerHooks;
  log: Logger;
  /** Bytes an agent may send before authenticating; guards against slowloris-style memory use. */
  ident?: string;
  /** Allow-listed hub services agents may open direct-tcpip channels to (hub.json "services"); default none. */
  services?: ServiceMap;
  /** hub.json "limits": deadlines, slots and per-source limits for unauthenticated connections (admission.ts). */
  limits?: AdmissionLimits;
  /** hub.json "limits": what one agent may have read but not handled (inbound-gate.ts). */
  sessionLimits?: SessionLimits;
  /** hub.json "limits": channels, forwards, hello deadline and connections per host (conn-limits.ts). */
  connLimits?: ConnLimits;
}

export class AgentServer {
  private readonly server: ssh2.Server;
  private readonly log: Logger;
  private tcpEndpoint = 'ssh://unbound';
  /** Every connection passes here until it authenticates (the WebSocket listener uses it too). */
  readonly admission: AdmissionGate;
  /** Every session's inbound limits: counts and log lines (inbound-gate.ts). */
  readonly inbound: InboundMonitor;
  /** Every connection's output bound (outbound-guard.ts): counts and log lines. */
  readonly outbound: OutboundMonitor;
  /** The TCP listener; its connections go through the gate into ssh2 (injectSocket). */
  private tcp: net.Server | null = null;
  /** Shell, exec, pty, direct-tcpip and the like: refused and logged (channel-policy.ts). */
  private readonly policy: ChannelPolicy;
  /** What each authenticated connection may hold (conn-guard.ts). */
  readonly conns: ConnectionGuard;

  constructor(private readonly opts: AgentServerOptions) {
    this.log = opts.log;
    const sessionLimits = opts.sessionLimits ?? SESSION_DEFAULTS;
    this.inbound = new InboundMonitor(sessionLimits, opts.log.child({ part: 'inbound' }));
    this.outbound = new OutboundMonitor(() => sessionLimits.sessionOutboundBytes, opts.log.child({ part: 'outbound' }));
    const conns = new ConnectionGuard({ limits: opts.connLimits ?? CONN_DEFAULTS, log: opts.log });
    this.conns = conns;
    this.policy = new ChannelPolicy({
      log: opts.log, services: opts.services ?? {}, refusals: conns.refusals,
      channel: (conn, kind) => conns.channel(conn, kind),
      guard: (conn, ch) => { const s = conns.sessionOf(conn); if (s) this.inbound.guard(ch, s, 'service'); },
    });
    const ident = opts.ident ?? 'bento-hub';
    this.server = new ssh2.Server(sshServerConfig({ hostKey: opts.hostKey, ident, heartbeatMs: opts.hooks.heartbeatMs() }), (conn, info) =>
      this.handle(conn, info, { carrier: 'ssh', endpoint: this.tcpEndpoint, remoteAddress: fmtAddr(info.ip, info.port) }),
    );
    this.server.on('error', (err: Error) => this.log.error({ err: err.message }, 'ssh listener error'));
    const ssh = this.server as unknown as { injectSocket(s: Duplex): void };
    // The gate sends the identification at accept (banner.ts); ssh2 sends it again when it takes over.
    const greeting = Buffer.from(`SSH-2.0-${ident}\r\n`);
    this.admission = new AdmissionGate({
      limits: opts.limits ?? DEFAULT_LIMITS,
      greeting,
      start: (stream) => { skipRepeatedGreeting(stream, greeting); ssh.injectSocket(stream); },
      log: opts.log.child({ part: 'admission' }),
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    const tcp = net.createServer((sock) => {
      const ticket = this.admission.open(sock);
      if (ticket) this.admission.admit(ticket, sock);
    });
    this.tcp = tcp;
    return new Promise((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, host, () => {
        tcp.off('error', reject);
        tcp.on('error', (err: Error) => this.log.error({ err: err.message }, 'ssh listener error'));
        const addr = tcp.address() as AddressInfo;
        this.tcpEndpoint = `ssh://${fmtAddr(addr.address, addr.port)}`;
        resolve(addr);
      });
    });
  }

  /** Run the SSH protocol over an already-connected stream (WebSocket carrier) admitted as `ticket`. */
  inject(stream: Duplex, origin: SessionOrigin, ticket: Ticket): void {
    // ssh2 calls the connection listener only after the client's greeting
    // arrives, so the origin travels on the stream object itself.
    (stream as unknown as Record<symbol, SessionOrigin>)[ORIGIN] = origin;
    this.admission.admit(ticket, stream);
  }

  private handle(conn: Connection, info: SshClientInfo, tcpOrigin: SessionOrigin): void {
    const sock = (conn as unknown as { _sock?: Record<symbol, SessionOrigin | undefined> })._sock;
    const origin = sock?.[ORIGIN] ?? tcpOrigin;
    // Control messages are small and latency-bound: with Nagle on, a job.start
    // written while the agent's delayed ACK of the previous line is pending
    // waits ~40 ms (measured: trigger-to-start p50 45 ms -> 9.5 ms; see
    // docs/performance.md). ssh2 ignores this on streams without setNoDelay
    // (the ws carrier, whose socket the ws library already sets).
    // (@types/ssh2 declares setNoDelay only on Client; the server Connection has it too.)
    (conn as unknown as { setNoDelay?(on: boolean): unknown }).setNoDelay?.(true);
    let authedAs = '';
    let session: LiveSession | null = null;
    const log = this.log;
    const admission = this.admission;
    // Every variable an inner function uses lives in one context object that
    // all of them keep for the connection's life: keep only what they need
    // (the peer's address, not ssh2's whole ClientInfo with its parsed
    // identification).
    const ip = info.ip;
    // What the admission gate needs to know if this peer leaves unauthenticated
    // (penalties). Looked up each time, not kept: these listeners live as long
    // as the session, and the ticket is gone once it authenticates.
    conn.once('handshake', () => { const t = admission.ticketOf(sock); if (t) t.kex = true; });

    let authFailures = 0;
    conn.on('authentication', (ctx) => {
      authenticate(ctx, { registry: this.opts.registry, refusals: this.conns.refusals, source: ip ?? '?' }, (name) => { authedAs = name; }).then(
        (fine) => {
          const t = admission.ticketOf(sock);
          if (!fine && t) t.authFailed = true;
          if (!fine && ++authFailures >= MAX_AUTH_FAILURES) conn.end();
        },
        (err: Error) => {
          log.error({ err: err.message }, 'authentication error');
          ctx.reject(['publickey']);
        },
      );
    });

    conn.once('ready', () => {
      admission.authenticated(sock, authedAs);
      this.policy.authenticated(conn, authedAs);
      // ssh2 disconnects a peer that asks to authenticate again: the listener has done its work.
      conn.removeAllListeners('authentication');
      const s = new LiveSession(authedAs, conn, origin);
      session = s;
      // From here on the agent can make the hub write (SFTP, channels, answers): bound what waits unread.
      if (sock) s.outbound = this.outbound.guard(authedAs, sock as unknown as OutboundStream);
      this.policy.outbound(conn, s.outbound);
      const conns = this.conns;
      conns.admit(conn, s);
      // Any bytes from the agent are a sign of life, SSH keepalives included
      // (ssh2 answers those itself, so no Bento code would see them otherwise).
      // The session sweep (sessions.ts) judges liveness from this.
      // And a paused control channel that keeps filling is a peer ignoring the SSH window (inbound-gate.ts).
      (sock as unknown as Duplex | undefined)?.on('data', () => { s.lastInbound = Date.now(); s.inbound?.check(); });
      conn.on('session', (accept, reject) => {
        const done = conns.channel(conn, 'session');
        if (!done) return reject();
        const sess = accept();
        sess.once('close', done);
        const onSftp = this.opts.hooks.onSftp;
        if (onSftp) sess.on('sftp', (acceptSftp) => { sess.once('close', conns.sftp(conn)); onSftp(s, acceptSftp); });
        this.policy.session(sess, s.name, onSftp ? ['sftp'] : []);
        sess.on('subsystem', (acceptSub, rejectSub, { name }) => {
          if (name === CONTROL_SUBSYSTEM && !s.channel) {
            attachControl(s, acceptSub(), { hooks: this.opts.hooks, log, inbound: this.inbound });
          } else if (s.channel && this.opts.hooks.onSubsystem?.(s, name, acceptSub)) {
            // handled (only after the control channel: the host said hello)
          } else {
            conns.refusals.warn('subsystem', { source: s.name, host: s.name, subsystem: printable(name, 64) }, 'refused subsystem');
            rejectSub();
          }
        });
      });
      conn.on('request', (accept, reject, kind, reqInfo) => {
        // Reverse forward of the agent's own sshd: recorded, never bound on the hub.
        const r = reqInfo as { bindAddr?: string; bindPort?: number };
        const key = `${r.bindAddr}:${r.bindPort}`;
        if (kind === 'tcpip-forward' && isLoopbackName(r.bindAddr) && validPort(r.bindPort)) {
          // Capped: each one costs a copy of the list (kept exact-size, live-session.ts); 20,000 cost 19.9 s of CPU.
          if (!s.forwards.includes(key) && s.forwards.length >= conns.limits.forwardsPerSession) {
            conns.refusals.warn('forwards', { source: s.name, host: s.name, limit: conns.limits.forwardsPerSession }, 'refused reverse forward: limits.forwardsPerSession reached');
            return void reject?.();
          }
          if (!s.forwards.includes(key)) s.forwards = [...s.forwards, key];
          accept?.(r.bindPort);
        } else if (kind === 'cancel-tcpip-forward') {
          s.forwards = s.forwards.filter((f) => f !== key);
          accept?.();
        } else {
          conns.refusals.warn('request', { source: s.name, host: s.name, request: printable(String(kind), 64), bind: printable(key, 80) }, 'refused global request');
          reject?.();
        }
      });
    });
    this.policy.connection(conn);

    conn.on('error', (err: Error & { level?: string }) => {
      const t = admission.ticketOf(sock);
      if (!authedAs && t && err.level !== 'socket') t.protocolError = true;
      log.debug({ host: authedAs || undefined, remote: origin.remoteAddress, err: err.message }, 'agent connection error');
    });
    conn.on('close', () => {
      this.conns.left(conn);
      if (authedAs) admission.left(ip, authedAs);
      if (session) {
        session.closed = true;
        this.opts.hooks.onClose(session);
      }
    });
  }

  /** Stop accepting; resolves once every TCP connection is gone (the caller cuts the sessions). */
  close(): Promise<void> {
    const tcp = this.tcp;
    this.tcp = null;
    const closed = tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : Promise.resolve();
    this.admission.close();
    this.inbound.close();
    this.outbound.close();
    this.conns.close();
    return closed;
  }
}

/**
 * Key exchanges a peer may choose, and compression. Both are offered before
 * authentication, so anyone who reaches the port picks from them (found by
 * review, measured against a real hub): ssh2's defaults include the 8192-bit
 * diffie-hellman-group18, where a stranger who sends one fixed KEXDH_INIT and
 * leaves costs the hub ~19 ms of CPU for nothing (curve25519: ~0.4 ms), and
 * plain `zlib`, active from the first NEWKEYS, whose inflater has no output
 * cap: 31 unauthenticated packets of 28 KiB inflated to 30 MB each (RSS +140
 * MiB). Every agent (ssh2) and OpenSSH since 6.5 speak curve25519; the
 * nistp256 exchange stays for clients without it. Nothing compresses.
 */
export const HUB_SSH_ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256'],
  compress: ['none'],
} as const;

/**
 * The SSH layer's settings (host key, identification, keepalive, the
 * algorithms above; ciphers, MACs and host key formats are ssh2's defaults).
 * Exported so the benchmark's floor server (test/bench/floor-server.ts) runs
 * exactly the same SSH as the hub.
 */
export function sshServerConfig(o: { hostKey: Buffer; ident: string; heartbeatMs: number }): ssh2.ServerConfig {
  // ssh2 pings every connection that was silent for keepaliveInterval (default
  // 15 s, below the 25 s heartbeat), so each agent cost an extra SSH round trip
  // per heartbeat period: at 10,000 agents ~400 pings/s, about half the hub's
  // idle CPU (docs/performance.md). Any inbound packet resets ssh2's timer, so
  // with the interval above the heartbeat period a heartbeating agent is never
  // pinged; the control channel's heartbeat and the session sweep already
  // judge liveness. Connections that never say hello keep ssh2's dead-peer
  // check, at this longer interval.
  const keepaliveInterval = Math.max(15_000, 2 * o.heartbeatMs);
  const algorithms = { kex: [...HUB_SSH_ALGORITHMS.kex], compress: [...HUB_SSH_ALGORITHMS.compress] };
  return { hostKeys: [hostKeyForServer(o.hostKey)], ident: o.ident, keepaliveInterval, algorithms } as ssh2.ServerConfig;
}

function fmtAddr(ip: string | undefined, port: number | undefined): string {
  const host = ip ?? '?';
  return host.includes(':') ? `[${host}]:${port ?? 0}` : `${host}:${port ?? 0}`;
}

function isLoopbackName(addr: string | undefined): boolean {
  return addr === 'localhost' || addr === '127.0.0.1' || addr === '::1';
}

function validPort(p: number | undefined): boolean {
  return typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
}
