// Hub liveness, for a cluster of hubs: each hub rewrites its heartbeat record
// ("hub:NAME" in the holds bucket) every beatMs.
//
//   - Another hub is alive while its beats keep arriving: dead once none came
//     for deadAfterMs, timed by this hub's own monotonic clock as they arrive
//     (so clock skew between hub machines does not matter). A record found at
//     start is judged by its wall-clock time once, then by arrivals. What a
//     dead hub held reads as offline everywhere (`list`, `status`, routing).
//   - This hub is "current" while its own latest beat came back through its
//     watch less than leaseMs after it was sent: then its view of the bucket
//     holds everything written before that beat, so what it says about the
//     hosts it holds is true as of then. Not current (NATS away, a watch that
//     stalled, or the process was paused: SIGSTOP, a long GC) means it must
//     not vouch for any host; once current again, the holders drop the hosts
//     taken meanwhile (holds.ts reconcile).
import { performance } from 'node:perf_hooks';
import { BentoError } from '../../common/protocol/errors.js';
import { WELCOME_HUB_URL_MAX, WELCOME_MAX_HUBS } from '../../common/protocol/messages.js';
import { BENTO_VERSION } from '../../common/protocol/version.js';
import type { Logger } from '../../common/platform/log.js';
import type { KeyedStore, StoreChange } from '../store/types.js';
import { HUB_KEY_PREFIX, hubKey, type HoldEntry, type HubBeat } from './hold-records.js';
import { withinDeadline } from './deadline.js';

export interface LivenessTiming {
  /** How often this hub writes its heartbeat. */
  beatMs: number;
  /** This hub vouches for its hosts only while its last beat came back within this. */
  leaseMs: number;
  /** Another hub whose beats stopped this long is dead. */
  deadAfterMs: number;
}

/** The defaults for a heartbeat period: lease 3 beats, dead after 6 (a leader election takes ~5 s). */
export function livenessTiming(beatMs: number): LivenessTiming {
  return { beatMs, leaseMs: 3 * beatMs, deadAfterMs: 6 * beatMs };
}

export interface LivenessDeps {
  store: KeyedStore<HoldEntry>;
  hubName: string;
  run: string;
  timing: LivenessTiming;
  log: Logger;
  /** This hub became current again after it was not (and once at start). */
  current: () => void;
  /** How agents reach this hub (told in every hub's welcome). */
  url?: string;
}

interface Seen { run: string; beat: number; at: number; startedAt: string; version: string; wallAt: string; url?: string }

export interface HubSummary { name: string; alive: boolean; self: boolean; startedAt: string; lastBeatAt: string; version: string }

export class HubLiveness {
  private readonly seen = new Map<string, Seen>();
  /** Beat number -> when it was sent (monotonic ms). */
  private readonly sent = new Map<number, number>();
  private readonly startedAt = new Date().toISOString();
  private beat = 0;
  private leaseUntil = -Infinity;
  private backAt = performance.now();
  private timer: NodeJS.Timeout | null = null;
  private failing = false;
  private readonly unwatch: () => void;
  private firstBack: (() => void) | null = null;
  /** urls() left some out already (logged once, not at every welcome). */
  private urlsCapped = false;

  constructor(private readonly d: LivenessDeps) {
    const now = performance.now();
    for (const v of d.store.values()) {
      if (v.t !== 'hub' || (v.name === d.hubName && v.run === d.run)) continue;
      // Found at start: as old as its wall-clock time says (at most "just dead").
      const age = Math.min(Math.max(0, Date.now() - Date.parse(v.at)), d.timing.deadAfterMs);
      this.seen.set(v.name, { run: v.run, beat: v.beat, at: now - (Number.isFinite(age) ? age : d.timing.deadAfterMs), startedAt: v.startedAt, version: v.version, wallAt: v.at, ...(v.url ? { url: v.url } : {}) });
    }
    this.unwatch = d.store.watch((c) => this.changed(c));
  }

  /** Start beating; resolves once the first beat came back (or rejects with CLUSTER_UNAVAILABLE). */
  start(): Promise<void> {
    const first = new Promise<void>((resolve) => { this.firstBack = resolve; });
    this.timer = setInterval(() => this.send(), this.d.timing.beatMs);
    this.timer.unref();
    this.send();
    const limit = Math.max(10_000, 4 * this.d.timing.leaseMs);
    return withinDeadline(first, limit, () => new BentoError('CLUSTER_UNAVAILABLE', `this hub's heartbeat did not come back from NATS within ${limit} ms`));
  }

  /** May this hub vouch for its hosts now? */
  get current(): boolean {
    return performance.now() < this.leaseUntil;
  }

  /** Since this hub last heard its own beat back. */
  get silentMs(): number {
    return performance.now() - this.backAt;
  }

  alive(hub: string, run: string): boolean {
    return this.lastBeat(hub, run) !== null;
  }

  /** When HUB (in run RUN) last beat, as a wall-clock ISO time; null when it is dead or runs another run. */
  lastBeat(hub: string, run: string): string | null {
    if (hub === this.d.hubName && run === this.d.run) return new Date().toISOString();
    const s = this.seen.get(hub);
    if (!s || s.run !== run) return null;
    const age = performance.now() - s.at;
    return age < this.d.timing.deadAfterMs ? new Date(Date.now() - age).toISOString() : null;
  }

  /**
   * How agents reach the live hubs (those that were told: cluster.agentUrl),
   * this one first, each once, and at most what the agent's welcome accepts
   * (WELCOME_MAX_HUBS, each URL up to WELCOME_HUB_URL_MAX): one more, and every
   * welcome of this hub failed at every agent, so no agent could connect
   * (found by review). The others in name order, so the ones left out are
   * the same at every welcome.
   */
  urls(): string[] {
    const out = new Set<string>();
    if (this.d.url) out.add(this.d.url);
    let left = 0;
    const names = [...this.seen.keys()].filter((n) => n !== this.d.hubName).sort();
    for (const name of names) {
      const s = this.seen.get(name)!;
      if (!s.url || out.has(s.url) || !this.alive(name, s.run)) continue;
      if (out.size < WELCOME_MAX_HUBS && s.url.length <= WELCOME_HUB_URL_MAX) out.add(s.url);
      else left++;
    }
    if (left > 0 && !this.urlsCapped) {
      this.urlsCapped = true;
      this.d.log.warn({ left, max: WELCOME_MAX_HUBS, maxUrlLength: WELCOME_HUB_URL_MAX }, 'the welcome names fewer live hubs than there are: an agent accepts at most this many URLs, each at most this long (logged once)');
    }
    return [...out];
  }

  hubs(): HubSummary[] {
    const out: HubSummary[] = [{ name: this.d.hubName, alive: this.current, self: true, startedAt: this.startedAt, lastBeatAt: new Date(Date.now() - this.silentMs).toISOString(), version: BENTO_VERSION }];
    for (const [name, s] of this.seen) {
      if (name === this.d.hubName) continue;
      const age = performance.now() - s.at;
      out.push({ name, alive: age < this.d.timing.deadAfterMs, self: false, startedAt: s.startedAt, lastBeatAt: new Date(Date.now() - age).toISOString(), version: s.version });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Stop beating and remove this hub's record, so the others see at once that it is gone. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unwatch();
    this.leaseUntil = -Infinity;
    await this.d.store.delete(hubKey(this.d.hubName)).catch((err: Error) => this.d.log.debug({ err: err.message }, 'could not remove this hub\'s heartbeat record'));
  }

  private send(): void {
    const n = ++this.beat;
    this.sent.set(n, performance.now());
    const rec: HubBeat = { t: 'hub', name: this.d.hubName, run: this.d.run, startedAt: this.startedAt, beat: n, at: new Date().toISOString(), version: BENTO_VERSION, pid: process.pid, ...(this.d.url ? { url: this.d.url } : {}) };
    this.d.store.set(hubKey(this.d.hubName), rec).then(
      () => { if (this.failing) this.d.log.info('heartbeat reaches NATS again'); this.failing = false; },
      (err: Error) => {
        if (!this.failing) this.d.log.error({ err: err.message }, 'heartbeat not acknowledged by NATS; this hub stops vouching for its hosts until it is');
        this.failing = true;
      },
    );
    // Beats that never came back are of no use once older than the lease.
    for (const [b, t] of this.sent) if (performance.now() - t > this.d.timing.leaseMs * 4) this.sent.delete(b);
  }

  private changed(c: StoreChange<HoldEntry>): void {
    if (!c.key.startsWith(HUB_KEY_PREFIX)) return;
    const name = c.key.slice(HUB_KEY_PREFIX.length);
    if (c.op === 'delete') {
      if (name !== this.d.hubName) this.seen.delete(name);
      return;
    }
    const v = c.value;
    if (v.t !== 'hub') return;
    if (v.name === this.d.hubName && v.run === this.d.run) {
      const sentAt = this.sent.get(v.beat);
      if (sentAt === undefined) return;
      for (const b of this.sent.keys()) if (b <= v.beat) this.sent.delete(b);
      const wasCurrent = this.current;
      const silent = performance.now() - this.backAt;
      this.backAt = performance.now();
      this.leaseUntil = Math.max(this.leaseUntil, sentAt + this.d.timing.leaseMs);
      const starting = this.firstBack !== null;
      if (this.firstBack) { this.firstBack(); this.firstBack = null; }
      if (!wasCurrent && this.current) {
        if (!starting) this.d.log.warn({ silentMs: Math.round(silent) }, 'this hub is current again (it was paused, or NATS was away): dropping the hosts other hubs took meanwhile');
        this.d.current();
      }
      return;
    }
    if (v.name === this.d.hubName) return; // an earlier run of this hub: not alive
    const s = this.seen.get(v.name);
    if (!s || s.run !== v.run || s.beat !== v.beat) {
      this.seen.set(v.name, { run: v.run, beat: v.beat, at: performance.now(), startedAt: v.startedAt, version: v.version, wallAt: v.at, ...(v.url ? { url: v.url } : {}) });
    }
  }
}
