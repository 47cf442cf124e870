// Admission control for unauthenticated connections (issue 13), in stages:
//
// 1. Accept. A source (source-key.ts) that is penalised, or that already has
//    perSourceUnauthenticated connections in progress (plus its credit, see
//    source-book.ts), is refused at once. So is anyone when maxUnauthenticated
//    are in progress, unless a larger source can give one up (its oldest
//    connection without a slot is cut): a flood from few addresses cannot
//    lock out the rest.
// 2. Banner (banner.ts). The hub sends its identification and waits, at no
//    CPU cost, for the client's: at most bannerTimeoutMs after accept.
// 3. Slot (admission-slots.ts). Key exchange is CPU work on the hub's one
//    event loop, so at most maxHandshakes run at a time; the rest wait in a
//    queue fair across sources and bounded with random early drop, so a flood
//    cannot push legitimate handshakes past their deadline.
// 4. Deadline. Not authenticated handshakeTimeoutMs after accept: cut.
//
// Timeouts, garbage and refused authentication count toward the source's
// penalty; waiting in the queue too long does not (that is the hub's doing).
// Connected agents and admin requests never pass through here.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/platform/log.js';
import type { AdmissionLimits } from './admission-limits.js';
import { AdmissionStats, type AdmissionEvent, type RefuseReason } from './admission-stats.js';
import { Ticket, outcomeOf, type Cut, type Stage } from './admission-ticket.js';
import { LogThrottle } from '../../common/platform/log-throttle.js';
import { readBanner } from './banner.js';
import { HandshakeSlots } from './admission-slots.js';
import { SourceBook } from './source-book.js';
import { SourceSet, sourceKey } from './source-key.js';

export { Ticket } from './admission-ticket.js';

const SWEEP_MS = 10_000;

/**
 * The accepted socket's error listener until the SSH layer attaches its own.
 * One function for all: a closure made in open() would share open()'s
 * context, which holds the ticket, and the listener stays on the socket for
 * the connection's life (measured: each connected host kept its ticket, its
 * timers and their closures, ~700 B; docs/performance.md).
 */
const ignoreError = (): void => undefined;
/** Hosts seen within this long before a restart are recalled (a connected host's lastSeenAt is its last hello). */
const RECALL_MS = 30 * 86_400_000;

export interface AdmissionGateOptions {
  limits: AdmissionLimits;
  /** The server's identification line, CRLF included (sent at accept). */
  greeting: Buffer;
  /** Run the SSH protocol on a stream whose banner arrived and that holds a slot. */
  start(stream: Duplex): void;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

export class AdmissionGate {
  readonly stats = new AdmissionStats();
  private readonly l: AdmissionLimits;
  private readonly book: SourceBook;
  private readonly exempt: SourceSet;
  private readonly live = new Map<string, Set<Ticket>>();
  /**
   * The ticket of each stream handed to the SSH server, until it authenticates.
   * Not a property on the stream: deleting one afterwards turns the socket's
   * properties into a dictionary on Node 24 (V8 12+), 1.6 KB per connected host.
   */
  private readonly tickets = new WeakMap<object, Ticket>();
  private liveCount = 0;
  private readonly slots: HandshakeSlots;
  private readonly throttle: LogThrottle;
  private readonly sweeper: NodeJS.Timeout;
  private closing = false;

  constructor(private readonly opts: AdmissionGateOptions) {
    this.l = opts.limits;
    this.book = new SourceBook(opts.limits, opts.now);
    this.exempt = new SourceSet(opts.limits.exempt);
    this.throttle = new LogThrottle(opts.log);
    this.slots = new HandshakeSlots({
      limits: opts.limits,
      credit: (source) => this.book.credit(source),
      start: (stream) => opts.start(stream),
      cut: (t, why) => this.cut(t, why),
      random: opts.random ?? Math.random,
    });
    this.sweeper = setInterval(() => this.book.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Handshakes holding a slot, waiting for one, unauthenticated in all; sources refused now. */
  get inProgress(): number { return this.slots.inProgress; }
  get waiting(): number { return this.slots.waiting; }
  get unauthenticated(): number { return this.liveCount; }
  get penalisedSources(): number { return this.book.penalisedCount(); }

  /** A new TCP connection (for the WebSocket carrier: before its HTTP upgrade). Null: refused and destroyed. */
  open(socket: net.Socket): Ticket | null {
    // Until the SSH layer attaches its own, nobody else listens for errors (a reset from the peer).
    socket.on('error', ignoreError);
    const source = sourceKey(socket.remoteAddress);
    const exempt = this.exempt.has(socket.remoteAddress);
    const refused = this.closing ? 'full' : this.refusal(source, exempt);
    if (refused) {
      socket.destroy();
      this.record({ kind: 'refused', reason: refused }, source);
      return null;
    }
    const t = new Ticket(socket, source, exempt);
    let mine = this.live.get(source);
    if (!mine) this.live.set(source, (mine = new Set()));
    mine.add(t);
    this.liveCount++;
    t.timers.push(setTimeout(() => { if (t.stage === 'banner') this.cut(t, 'banner-timeout'); }, this.l.bannerTimeoutMs));
    t.timers.push(setTimeout(() => this.cut(t, 'deadline'), this.l.handshakeTimeoutMs));
    for (const x of t.timers) x.unref();
    t.onClose = () => this.finish(t);
    socket.once('close', t.onClose);
    return t;
  }

  /** Run the banner stage, the queue and the handshake on `stream` (the socket itself, or its WebSocket stream). */
  admit(t: Ticket, stream: Duplex): void {
    if (t.stage !== 'banner' || t.stream) {
      stream.destroy();
      return;
    }
    t.stream = stream;
    this.tickets.set(stream, t);
    t.cancelBanner = readBanner(stream, this.opts.greeting, (r) => {
      t.cancelBanner = null;
      if (r === 'garbage') this.cut(t, 'garbage');
      else {
        clearTimeout(t.timers[0]); // the banner timeout (open): the banner came
        this.slots.enqueue(t);
      }
    });
  }

  /** The connection authenticated as `host`: its slot goes to the next one, its source earns credit. */
  authenticated(stream: object | undefined, host: string): void {
    const t = this.ticketOf(stream);
    if (!stream || !t || t.stage === 'done') return;
    t.ok = true;
    this.tickets.delete(stream);
    // The SSH layer listens for the socket's errors by now (ssh2 does from the start).
    if (t.socket.listenerCount('error') > 1) t.socket.off('error', ignoreError);
    this.finish(t);
    this.book.succeeded(t.source, host);
  }

  /** The ticket of a stream handed to the SSH server, until it authenticates. */
  ticketOf(stream: object | undefined): Ticket | undefined {
    return stream ? this.tickets.get(stream) : undefined;
  }

  /** An authenticated session of `host` from `address` ended (its source keeps the credit for an hour). */
  left(address: string | undefined, host: string): void {
    this.book.left(sourceKey(address), host);
  }

  /**
   * Where hosts were last connected from, as the host-state store remembers
   * it ("ADDRESS:PORT", "[ADDRESS]:PORT"): after a restart, their sources get
   * their credit back for the next hour, so the reconnect storm of a fleet
   * behind one address is not throttled as if it were strangers.
   */
  recall(hosts: ReadonlyArray<{ name: string; remoteAddress: string | null; lastSeenAt: string | null }>): void {
    const since = Date.now() - RECALL_MS;
    for (const h of hosts) {
      if (!h.remoteAddress || !h.lastSeenAt || Date.parse(h.lastSeenAt) < since) continue;
      const m = /^\[(.+)\]:\d+$/.exec(h.remoteAddress) ?? /^(.+):\d+$/.exec(h.remoteAddress);
      if (m) this.book.recall(sourceKey(m[1]), h.name);
    }
  }

  /** Cut one connection for `why` (its close does the rest, but the books are updated now). */
  cut(t: Ticket, why: Cut): void {
    if (t.stage === 'done') return;
    t.cut = why;
    this.finish(t);
    t.socket.destroy();
    if (t.stream && t.stream !== t.socket) t.stream.destroy();
  }

  /** Stop: every unauthenticated connection is cut. */
  close(): void {
    this.closing = true;
    clearInterval(this.sweeper);
    for (const set of [...this.live.values()]) for (const t of [...set]) this.cut(t, 'shutdown');
    this.throttle.close();
  }

  private refusal(source: string, exempt: boolean): RefuseReason | null {
    if (!exempt && this.book.penalisedFor(source) > 0) return 'penalised';
    const mine = this.live.get(source)?.size ?? 0;
    if (!exempt && mine >= this.l.perSourceUnauthenticated + this.book.credit(source)) return 'per-source';
    if (this.liveCount >= this.l.maxUnauthenticated && !this.evictFor(source, mine)) return 'full';
    return null;
  }

  /**
   * At maxUnauthenticated: cut the oldest slotless connection of the largest
   * source, if that is not `source`; sources without hosts on record first.
   */
  private evictFor(source: string, mine: number): boolean {
    let big: Set<Ticket> | undefined;
    let bigSource = '';
    let bigKnown = true;
    for (const [s, set] of this.live) {
      const known = this.book.hasHosts(s);
      if (!big || (bigKnown && !known) || (bigKnown === known && set.size > big.size)) { big = set; bigSource = s; bigKnown = known; }
    }
    if (!big || bigSource === source || big.size <= mine + 1) return false;
    for (const t of big) {
      if (!t.slot) { this.cut(t, 'evicted'); return true; }
    }
    return false;
  }

  /** Bookkeeping when a ticket ends, however it ends; exactly once. */
  private finish(t: Ticket): void {
    if (t.stage === 'done') return;
    const stage = t.stage;
    t.stage = 'done';
    for (const x of t.timers) clearTimeout(x);
    t.cancelBanner?.();
    t.cancelBanner = null;
    t.socket.off('close', t.onClose);
    const mine = this.live.get(t.source);
    if (mine?.delete(t)) {
      this.liveCount--;
      if (mine.size === 0) this.live.delete(t.source);
    }
    this.slots.leave(t, stage);
    if (!t.ok) this.judge(t, stage);
  }

  /** Count how an unauthenticated connection ended, and charge its source if it was the peer's fault. */
  private judge(t: Ticket, stage: Stage): void {
    const { event, peersFault } = outcomeOf(t, stage);
    if (!event) return;
    this.record(event, t.source);
    if (!peersFault || t.exempt) return;
    const ms = this.book.failed(t.source);
    if (ms > 0) this.record({ kind: 'penalised' }, t.source, ms);
  }

  private record(e: AdmissionEvent, source: string, ms = 0): void {
    this.stats.record(e);
    if (e.kind === 'failed') return; // refused authentication is already logged (auth.ts); the others are noise
    const fields: { source: string } & Record<string, unknown> = { source };
    if ('reason' in e) fields['reason'] = e.reason;
    if ('stage' in e) fields['stage'] = e.stage;
    if (ms > 0) fields['refusedForS'] = ms / 1000;
    this.throttle.warn(`${e.kind}:${String(fields['reason'] ?? fields['stage'] ?? '')}`, fields, MESSAGES[e.kind]);
  }
}

const MESSAGES: Record<AdmissionEvent['kind'], string> = {
  refused: 'refused a connection at accept (see docs/security.md, "Limits")',
  dropped: 'dropped an unauthenticated connection',
  'timed-out': 'cut an unauthenticated connection at its deadline',
  failed: 'unauthenticated connection failed',
  penalised: 'source penalised: its connections are refused at accept for a while (repeated timeouts, garbage or refused authentication)',
};
