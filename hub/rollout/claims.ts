// Which rollout has which host (docs/rollouts.md, "Several hubs"). A second
// rollout that shares a host with a running or halted one is refused; the
// view alone cannot say so in a cluster, where a rollout another hub started
// a moment ago may not have reached this hub yet, so two admins starting
// overlapping rollouts at two hubs at once both got them, and a shared host
// was switched twice. So a start claims each of its hosts first: one record
// per host in the keyed store "rollout-claims" (records.ts HostClaim), made
// by compare-and-swap (a create, exact on every NATS version), naming the
// rollout. Of two starts racing for a host, one creates its claim; the other
// is refused (ROLLOUT_CONFLICT) and releases what it claimed.
//
// Hosts are claimed CLAIM_BATCH at a time (one at a time, a 10,000-host
// start would wait for 10,000 round trips), so two overlapping starts may
// each get part of the shared hosts. Then the one with the greater rollout id
// gives way (refused, releasing its claims) and the other waits for that,
// or for the first to have started after all: exactly one gets through.
//
// A claim holds while its rollout runs or is halted. One whose rollout is
// finished or gone is taken over by the next start that wants the host, and
// released (deleted, by compare-and-swap) by the sweep. One whose rollout has
// no record yet is a start in progress, at this hub or another, or one that
// died between its claims and its record: it holds for CLAIM_LAPSE_MS (and
// CLAIM_LAPSE_PER_HOST_MS per host of the rollout: claiming 45,000 hosts
// takes a while), then lapses. A start that takes half of that is withdrawn
// (its claims may have lapsed meanwhile at another hub, whose clock may be
// off by the other half).
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { RolloutDriving } from './driver.js';
import type { HostClaim } from './records.js';
import type { RolloutStore } from './store.js';
import { untilView } from '../store/view-wait.js';

/** A claim whose rollout has no record lapses after this: the start that made it did not finish (a hub died). */
export const CLAIM_LAPSE_MS = 60_000;
/** And this much longer per host the rollout claims (a 3-node NATS cluster on loopback: about 1 ms a claim). */
const CLAIM_LAPSE_PER_HOST_MS = 10;
/** A claim refused this often (the host's claim kept changing hands) refuses the start. */
const MAX_ATTEMPTS = 3;
/** Hosts claimed at once. */
const CLAIM_BATCH = 64;
/** How long a start waits for a racing start with a greater rollout id to give way. */
const RACE_WAIT_MS = 10_000;

export interface RolloutClaimsDeps {
  store: Pick<RolloutStore, 'get' | 'claims' | 'drop'>;
  driving: RolloutDriving;
  log: Logger;
  now?: () => number;
}

/**
 * Of one start: how long its claims hold without a record (HostClaim.lapseMs), when it stops waiting
 * for racing starts (set at its first wait), and whether one of its claims was refused.
 */
interface Race { lapseMs: number; until: number | null; lost: boolean; why?: unknown }

const isConflict = (err: unknown): boolean => err instanceof BentoError && err.code === 'STATE_CONFLICT';

export class RolloutClaims {
  /** Rollout id -> the hosts it claims, and host -> its rollout (this hub's view of the claims). */
  private readonly hostsOf = new Map<string, Set<string>>();
  private readonly ownerOf = new Map<string, string>();
  /**
   * Changes of each host's claim this hub has seen: what a refused claim waits
   * for. Not the revision, which a claim made and released again in one go
   * (a racing start giving way) takes back to what it was.
   */
  private readonly changes = new Map<string, number>();
  /** Rollouts this hub is starting now: their claims hold whatever their age. */
  private readonly starting = new Set<string>();
  private sweeping = false;
  /**
   * Starts and sweeps of this hub, one at a time: a release of a finished
   * rollout's claim and a start taking the same claim over are two writes of
   * one key from this hub, and the later one makes the store drop the other
   * (found by cluster-rollout-overlap: a takeover "not acknowledged").
   */
  private turn: Promise<unknown> = Promise.resolve();
  private readonly unwatch: () => void;
  private readonly now: () => number;

  constructor(private readonly d: RolloutClaimsDeps) {
    this.now = d.now ?? Date.now;
    for (const host of d.store.claims.keys()) this.index(host, d.store.claims.get(host));
    this.unwatch = d.store.claims.watch((c) => this.index(c.key, c.op === 'set' ? c.value : undefined));
  }

  close(): void {
    this.unwatch();
  }

  /**
   * Claim HOSTS for rollout ID, then SAVE its record (durable before anyone
   * hears of it). Refused (ROLLOUT_CONFLICT) when another rollout has one of
   * them; the claims made are released. EPOCH: the record's driver epoch.
   */
  start(id: string, hosts: readonly string[], epoch: number, save: () => Promise<void>): Promise<void> {
    return this.inTurn(() => this.startNow(id, hosts, epoch, save));
  }

  private async startNow(id: string, hosts: readonly string[], epoch: number, save: () => Promise<void>): Promise<void> {
    const since = this.now();
    const made: string[] = [];
    this.starting.add(id);
    try {
      const sorted = [...new Set(hosts)].sort();
      const race: Race = { lapseMs: CLAIM_LAPSE_MS + sorted.length * CLAIM_LAPSE_PER_HOST_MS, until: null, lost: false };
      try {
        for (let i = 0; i < sorted.length; i += CLAIM_BATCH) {
          const batch = sorted.slice(i, i + CLAIM_BATCH);
          await Promise.all(batch.map(async (host) => {
            try {
              await this.claim(id, host, race);
              made.push(host);
            } catch (err) {
              race.lost = true; // the others of the batch stop waiting
              race.why ??= err; // the first refusal is the reason (the others of the batch gave up because of it)
            }
          }));
          if (race.lost) throw race.why;
        }
      } catch (err) {
        await this.release(id, made);
        throw err;
      }
      // A save that failed may still land (a write past its deadline is retried): its claims stay, and lapse if it never does.
      await save();
      const lost = made.filter((h) => this.d.store.claims.get(h)?.rollout !== id);
      const took = this.now() - since;
      if (lost.length === 0 && took < race.lapseMs / 2) return;
      this.d.log.error({ rollout: id, took, lost: lost.slice(0, 5) }, 'starting the rollout took so long that its host claims may have lapsed; withdrawing it');
      await this.d.store.drop(id, epoch);
      await this.release(id, made);
      throw new BentoError('STATE_CONFLICT', `starting rollout ${id} took ${Math.round(took / 1000)} s; its claims on its hosts may have lapsed meanwhile, so it was withdrawn; start it again`);
    } finally {
      this.starting.delete(id);
    }
  }

  /** Release the claims of rollouts that no longer hold their hosts (finished, gone, or a start that never finished). */
  async sweep(): Promise<void> {
    if (this.sweeping || !this.d.driving.mayAct()) return;
    this.sweeping = true;
    await this.inTurn(() => this.sweepNow()).finally(() => { this.sweeping = false; });
  }

  private async sweepNow(): Promise<void> {
    for (const [id, hosts] of [...this.hostsOf]) {
      const r = this.d.store.get(id);
      if (r?.state === 'running' || r?.state === 'halted' || this.starting.has(id)) continue;
      // The hub that claimed releases (whichever run), or the successor when that run is gone.
      const releasable = (h: string): boolean => {
        const c = this.d.store.claims.get(h);
        return c?.rollout === id && !this.holds(c)
          && (c.hub === this.d.driving.hub || (this.d.driving.successor() && !this.d.driving.alive({ hub: c.hub, run: c.run, epoch: 1 })));
      };
      await this.release(id, [...hosts].filter(releasable));
    }
  }

  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** Does claim C still hold its host? */
  private holds(c: HostClaim): boolean {
    const r = this.d.store.get(c.rollout);
    if (r) return r.state === 'running' || r.state === 'halted';
    return this.starting.has(c.rollout) || this.now() - Date.parse(c.at) < c.lapseMs;
  }

  /**
   * Claim HOST for rollout ID: create its claim, or take over one that no
   * longer holds. A claim of another start still in progress (no record yet)
   * with a greater rollout id is waited for (RACE): that start gives way when
   * it meets one of ours, or it got all its hosts first and starts.
   */
  private async claim(id: string, host: string, race: Race): Promise<void> {
    const claims = this.d.store.claims;
    for (let refused = 0; ;) {
      const cur = claims.entry(host);
      const seen = this.changes.get(host) ?? 0;
      const changed = (): boolean => (this.changes.get(host) ?? 0) !== seen;
      if (cur && this.holds(cur.value)) {
        const racing = !this.d.store.get(cur.value.rollout) && cur.value.rollout > id;
        const until = (race.until ??= Date.now() + RACE_WAIT_MS);
        if (!racing || race.lost || Date.now() >= until) throw this.conflict(host, cur.value);
        const rollout = cur.value.rollout;
        await untilView(() => race.lost || changed() || this.d.store.get(rollout) !== undefined, until);
        continue;
      }
      // A finished rollout's claim not yet released is routine; one left by a start that never finished is worth a line.
      if (cur) this.d.log[this.d.store.get(cur.value.rollout) ? 'debug' : 'info']({ rollout: id, host, was: cur.value.rollout }, 'taking over a host claim its rollout no longer needs');
      const expectRevision = cur?.revision ?? 0;
      try {
        const claim: HostClaim = { rollout: id, hub: this.d.driving.hub, run: this.d.driving.run, at: new Date(this.now()).toISOString(), lapseMs: race.lapseMs };
        await claims.set(host, claim, { expectRevision });
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Another hub's claim won: wait for this hub's view to show it, then look again.
        if (++refused >= MAX_ATTEMPTS || !(await untilView(changed))) {
          throw new BentoError('ROLLOUT_CONFLICT', `${host} was claimed by a rollout started at another hub just now; see \`bento-hub rollout status\``);
        }
      }
    }
  }

  private conflict(host: string, c: HostClaim): BentoError {
    const r = this.d.store.get(c.rollout);
    if (r) return new BentoError('ROLLOUT_CONFLICT', `rollout ${r.id} (${r.state}) already covers ${host}; resume or abort it first`);
    return new BentoError('ROLLOUT_CONFLICT', `rollout ${c.rollout}, being started at hub ${c.hub}, has claimed ${host}; see \`bento-hub rollout status\``);
  }

  /**
   * Delete rollout ID's claims on HOSTS, each by compare-and-swap (another
   * rollout may have taken it over), CLAIM_BATCH at a time (one at a time, a
   * file journal would sync once per host). Best effort: the sweep tries again.
   */
  private async release(id: string, hosts: readonly string[]): Promise<void> {
    const claims = this.d.store.claims;
    for (let i = 0; i < hosts.length; i += CLAIM_BATCH) {
      await Promise.all(hosts.slice(i, i + CLAIM_BATCH).map(async (host) => {
        const cur = claims.entry(host);
        if (cur?.value.rollout !== id) return;
        await claims.delete(host, { expectRevision: cur.revision }).catch((err: Error) => {
          if (!isConflict(err)) this.d.log.warn({ rollout: id, host, err: err.message }, 'could not release a host claim; the sweep tries again');
        });
      }));
    }
  }

  private index(host: string, c: HostClaim | undefined): void {
    this.changes.set(host, (this.changes.get(host) ?? 0) + 1);
    const old = this.ownerOf.get(host);
    if (old !== undefined && old !== c?.rollout) {
      const hosts = this.hostsOf.get(old);
      if (hosts?.delete(host) && hosts.size === 0) this.hostsOf.delete(old);
    }
    if (!c) {
      this.ownerOf.delete(host);
      return;
    }
    this.ownerOf.set(host, c.rollout);
    let hosts = this.hostsOf.get(c.rollout);
    if (!hosts) this.hostsOf.set(c.rollout, (hosts = new Set()));
    hosts.add(host);
  }
}
