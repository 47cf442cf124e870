// Hostile peers for the hostile-*.test.ts files (issue 13): many raw TCP
// connections to the hub from chosen loopback source addresses (127/8 needs no
// setup on Linux), each sending nothing, a fixed prefix, or a trickle of bytes,
// and optionally reopened when the hub cuts them, as a persistent attacker
// would. Plus the measurements: how long each connection lived, whether the
// hub sent it anything, and when a legitimate agent appeared in the hub's log.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { sleep } from '../helpers/proc.js';
import type { Daemon } from '../helpers/proc.js';
import { parsePrometheusText } from '../../common/platform/prometheus.js';

export interface SiegeOptions {
  port: number;
  /** Source addresses, used in turn. */
  sources: string[];
  count: number;
  /** Run once a connection is up (write a prefix, start a trickle); may return a cleanup. */
  behave?: (sock: net.Socket) => (() => void) | void;
  /** Reopen a connection the hub closed after this long (a persistent attacker); default: never. */
  reopenMs?: number;
  /** At most this many connects in all (bounds a persistent attacker). */
  maxConnects?: number;
}

export interface ClosedConn { ms: number; gotBytes: boolean; source: string }

export interface Siege {
  /** Connections established and not closed yet. */
  open(): number;
  /** Age in ms of the oldest connection still open (0 when none). */
  oldestOpenMs(): number;
  /** Every connection that ended (closed by the hub or refused), in order. */
  readonly closed: ClosedConn[];
  connects(): number;
  /** Resolves once every connection of the first wave has connected or failed. */
  readonly established: Promise<void>;
  stop(): void;
}

export function siege(opts: SiegeOptions): Siege {
  const live = new Map<net.Socket, number>();
  const closed: ClosedConn[] = [];
  const maxConnects = opts.maxConnects ?? opts.count * 20;
  let connects = 0;
  let stopped = false;
  let firstWave = opts.count;
  let resolveEstablished!: () => void;
  const established = new Promise<void>((r) => { resolveEstablished = r; });
  const waveDone = (): void => { if (--firstWave === 0) resolveEstablished(); };

  const openOne = (i: number, first: boolean): void => {
    if (stopped || connects >= maxConnects) { if (first) waveDone(); return; }
    connects++;
    const source = opts.sources[i % opts.sources.length]!;
    const sock = net.connect({ host: '127.0.0.1', port: opts.port, localAddress: source });
    let openedAt = 0;
    let gotBytes = false;
    let cleanup: (() => void) | void;
    let counted = first;
    sock.on('connect', () => {
      openedAt = Date.now();
      live.set(sock, openedAt);
      if (counted) { counted = false; waveDone(); }
      cleanup = opts.behave?.(sock);
    });
    sock.on('data', () => { gotBytes = true; });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (counted) { counted = false; waveDone(); }
      cleanup?.();
      if (live.delete(sock)) closed.push({ ms: Date.now() - openedAt, gotBytes, source });
      if (!stopped && opts.reopenMs !== undefined) setTimeout(() => openOne(i, false), opts.reopenMs).unref();
    });
  };
  for (let i = 0; i < opts.count; i++) openOne(i, true);
  return {
    open: () => live.size,
    oldestOpenMs: () => {
      let oldest = Infinity;
      for (const t of live.values()) oldest = Math.min(oldest, t);
      return live.size ? Date.now() - oldest : 0;
    },
    closed,
    connects: () => connects,
    established,
    stop: () => {
      stopped = true;
      for (const s of live.keys()) s.destroy();
    },
  };
}

/** 127.0.0.2, 127.0.0.3, ...: `n` loopback source addresses from `first`. */
export function loopbackSources(n: number, first = 2): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${first + i}`);
}

/** Write `data` one byte every `everyMs` (a slowloris peer); returns the cleanup. */
export function trickle(sock: net.Socket, data: string, everyMs: number): () => void {
  let i = 0;
  const t = setInterval(() => {
    if (i >= data.length || sock.destroyed) { clearInterval(t); return; }
    sock.write(data[i++]!);
  }, everyMs);
  return () => clearInterval(t);
}

/** A complete, valid WebSocket upgrade request for `path` (the client half of the HTTP handshake). */
export function upgradeRequest(port: number, path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

/** One masked binary WebSocket frame from a client (payload < 126 bytes). */
export function clientFrame(payload: string): Buffer {
  const data = Buffer.from(payload);
  const mask = randomBytes(4);
  const masked = Buffer.from(data.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x82, 0x80 | data.length]), mask, masked]);
}

/**
 * Connect from `source` and report whether the hub refused at once: closed
 * within `withinMs` without sending a byte. A connection that is accepted
 * (the hub sends its SSH identification, or just keeps it open) is not.
 */
export function refusedAtOnce(port: number, source: string, withinMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress: source });
    let got = false;
    const t = setTimeout(() => { sock.destroy(); resolve(false); }, withinMs);
    sock.on('data', () => { got = true; clearTimeout(t); sock.destroy(); resolve(false); });
    sock.on('error', () => undefined);
    sock.on('close', () => { clearTimeout(t); if (!got) resolve(true); });
  });
}

const CONNECTED = /"msg":"agent connected"/;

/** How many "agent connected" lines for `host` the hub has logged so far. */
export function connectedLines(hub: Daemon, host: string): number {
  return hub.output().split('\n').filter((l) => CONNECTED.test(l) && l.includes(`"host":"${host}"`)).length;
}

/**
 * Until the hub logs one more "agent connected" for `host` than `before`;
 * resolves with the ms since `t0`, or Infinity after `limitMs` (bounded).
 */
export async function connectedAfter(hub: Daemon, host: string, before: number, t0: number, limitMs: number): Promise<number> {
  while (Date.now() - t0 < limitMs) {
    if (connectedLines(hub, host) > before) return Date.now() - t0;
    await sleep(25);
  }
  return Infinity;
}

/** The hub's /metrics as name{labels} -> value. */
export async function scrape(url: string): Promise<Map<string, number>> {
  return parsePrometheusText(await (await fetch(url)).text());
}
