// Many raw TCP connections to one port from chosen loopback source addresses
// (127/8 needs no setup on Linux), each sending nothing, a fixed prefix, or a
// trickle of bytes, and optionally reopened when the server cuts them, as a
// persistent attacker would; with how long each lived and whether the server
// sent it anything. Used by the hostile-*.test.ts files and the bench's
// attack phase (issue 13).
import net from 'node:net';

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
