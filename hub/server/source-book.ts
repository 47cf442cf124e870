// What the hub remembers about each source (source-key.ts) between its
// connections: failures, penalties, and which hosts authenticated from it.
//
// Penalties (after sshd's PerSourcePenalties): each failure (a timeout, a
// banner that is not SSH, refused authentication) adds one to a score that
// drains at penaltyFailures per penaltyWindowMs. A source whose score reaches
// penaltyFailures is refused at accept for penaltyMs; each further penalty
// doubles, up to penaltyMaxMs, until the source stays clean for penaltyMaxMs.
// Only the failing source pays: sources are counted separately, so agents on
// other addresses never notice.
//
// Credit (the NAT case): a fleet behind one NAT is one source. Each host
// connected from a source, or connected from it within the last hour, raises
// that source's allowance of unauthenticated connections and of failures by
// one, and its share of the handshake queue (fair-queue.ts), so the fleet's
// own reconnect storm is not starved by limits meant for strangers. Credit
// counts distinct host names, so a single stolen key earns one. A restarted
// hub recalls where hosts last came from (hub/store/host-state.ts) so the
// storm right after a restart has its credit too.
export const CREDIT_TTL_MS = 3_600_000;
const CREDIT_RECOUNT_MS = 1000;
/** Records kept at most (each small); past it the oldest idle ones go first. */
export const MAX_SOURCES = 131_072;

interface SourceRecord {
  score: number;
  scoreAt: number;
  strikes: number;
  penaltyUntil: number;
  /** When the last penalty ended (strikes are forgotten penaltyMaxMs after it). */
  penaltyEnd: number;
  /** Host name -> its sessions from this source now, and when the last one ended. */
  hosts: Map<string, HostPresence> | null;
  /** credit() as last counted, and when: it is asked at every accept, and a NAT may have thousands of hosts. */
  credit: number;
  creditAt: number;
}

interface HostPresence { live: number; at: number }

export interface PenaltySettings {
  penaltyFailures: number;
  penaltyWindowMs: number;
  penaltyMs: number;
  penaltyMaxMs: number;
}

export class SourceBook {
  private readonly records = new Map<string, SourceRecord>();

  constructor(private readonly s: PenaltySettings, private readonly now: () => number = Date.now) {}

  /** ms the source is still refused for, or 0. */
  penalisedFor(key: string): number {
    const r = this.records.get(key);
    return r ? Math.max(0, r.penaltyUntil - this.now()) : 0;
  }

  /** Hosts connected from this source now or within the last hour. */
  credit(key: string): number {
    const r = this.records.get(key);
    if (!r?.hosts) return 0;
    const now = this.now();
    // Credit only lapses an hour after a host left: a count at most a second old is exact enough.
    if (now - r.creditAt < CREDIT_RECOUNT_MS) return r.credit;
    const since = now - CREDIT_TTL_MS;
    let n = 0;
    for (const p of r.hosts.values()) if (p.live > 0 || p.at > since) n++;
    r.credit = n;
    r.creditAt = now;
    return n;
  }

  /** Anything from this source on record that credit could come from (cheap; may include lapsed credit). */
  hasHosts(key: string): boolean {
    return (this.records.get(key)?.hosts?.size ?? 0) > 0;
  }

  /** `host` authenticated from this source (a session begins). */
  succeeded(key: string, host: string): void {
    const r = this.record(key);
    const p = (r.hosts ??= new Map()).get(host);
    if (p && p.live === 0 && this.now() - p.at > CREDIT_TTL_MS) r.credit++;
    if (p) p.live++;
    else {
      r.hosts.set(host, { live: 1, at: this.now() });
      r.credit++;
    }
  }

  /** A session of `host` from this source ended. */
  left(key: string, host: string): void {
    const p = this.records.get(key)?.hosts?.get(host);
    if (!p || p.live === 0) return;
    p.live--;
    p.at = this.now();
  }

  /** `host` was connected from this source before a restart: credit for the next hour. */
  recall(key: string, host: string): void {
    const r = this.record(key);
    if ((r.hosts ??= new Map()).has(host)) return;
    r.hosts.set(host, { live: 0, at: this.now() });
    r.credit++;
  }

  /**
   * One failure from the source. Returns the penalty it just earned (ms), or
   * 0. A source already penalised is not extended by connections that were
   * in progress when it was (sshd does the same).
   */
  failed(key: string): number {
    const now = this.now();
    const r = this.record(key);
    const rate = this.s.penaltyFailures / this.s.penaltyWindowMs;
    r.score = Math.max(0, r.score - (now - r.scoreAt) * rate) + 1;
    r.scoreAt = now;
    // "> threshold - 1": the threshold-th failure of a burst counts in full, though the first has drained a little.
    if (r.penaltyUntil > now || r.score <= this.s.penaltyFailures + this.credit(key) - 1) return 0;
    if (now - r.penaltyEnd > this.s.penaltyMaxMs) r.strikes = 0;
    const ms = Math.min(this.s.penaltyMaxMs, this.s.penaltyMs * 2 ** Math.min(r.strikes, 40));
    r.strikes++;
    r.score = 0;
    r.penaltyUntil = now + ms;
    r.penaltyEnd = r.penaltyUntil;
    return ms;
  }

  /** Sources refused right now. */
  penalisedCount(): number {
    const now = this.now();
    let n = 0;
    for (const r of this.records.values()) if (r.penaltyUntil > now) n++;
    return n;
  }

  get size(): number {
    return this.records.size;
  }

  /** Forget what no longer matters (drained scores, old strikes, stale credit). Run now and then. */
  sweep(): void {
    const now = this.now();
    for (const [key, r] of this.records) {
      if (r.hosts) {
        for (const [h, p] of r.hosts) if (p.live === 0 && now - p.at > CREDIT_TTL_MS) r.hosts.delete(h);
        if (r.hosts.size === 0) r.hosts = null;
        r.creditAt = -Infinity;
      }
      if (this.idle(r, now)) this.records.delete(key);
    }
  }

  private idle(r: SourceRecord, now: number): boolean {
    const drained = r.score - (now - r.scoreAt) * (this.s.penaltyFailures / this.s.penaltyWindowMs) <= 0;
    return drained && r.penaltyUntil <= now && now - r.penaltyEnd > this.s.penaltyMaxMs && r.hosts === null;
  }

  private record(key: string): SourceRecord {
    let r = this.records.get(key);
    if (!r) {
      if (this.records.size >= MAX_SOURCES) this.evict();
      r = { score: 0, scoreAt: this.now(), strikes: 0, penaltyUntil: 0, penaltyEnd: -Infinity, hosts: null, credit: 0, creditAt: -Infinity };
      this.records.set(key, r);
    }
    return r;
  }

  /** Make room: the oldest record that is neither penalised nor has a host connected, else simply the oldest. */
  private evict(): void {
    const now = this.now();
    for (const [key, r] of this.records) {
      const live = r.hosts !== null && [...r.hosts.values()].some((p) => p.live > 0);
      if (r.penaltyUntil <= now && !live) { this.records.delete(key); return; }
    }
    const first = this.records.keys().next();
    if (!first.done) this.records.delete(first.value);
  }
}
