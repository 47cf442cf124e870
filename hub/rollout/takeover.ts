// Taking rollouts over (driver.ts has the rule): now and then (a sweep, every
// second) this hub looks at every unfinished rollout. One whose driver is
// dead is taken over by the successor among the live hubs, by compare-and-
// swap on its record (RolloutStore.claim: epoch + 1); the engine then
// re-derives it (recover.ts) and drives it on. One driven here is checked
// again every few sweeps against the job records, in case a record change or
// a connect never reached this hub. `resume` and `abort` at a hub that does
// not drive the rollout take it over first (claimHere).
//
// A finished rollout (done, aborted) still needs a driver while a host of it
// runs or is queued: running jobs finish and are recorded, a queued host runs
// when it connects. Only its driver writes that result, so a finished rollout
// with such hosts is taken over like an unfinished one; it is never advanced
// or halted again (engine.ts). So is one with a late turn (late.ts): a job of
// one of its turns that its host's record does not name, noted by this hub
// from the job records; taking it over, the successor gives the host its
// record back. A hub from before this does neither: a finished rollout is
// then taken over only for hosts running or queued.
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { drivenBy, notCurrent, type RolloutDriving } from './driver.js';
import type { RolloutRecord } from './records.js';
import type { RolloutStore } from './store.js';

export interface TakeoverDeps {
  store: RolloutStore;
  driving: RolloutDriving;
  log: Logger;
  /** Run FN in rollout ID's queue (the engine's steps of one rollout never interleave). */
  inQueue(id: string, fn: () => Promise<void>): Promise<void>;
  /** This hub drives ID (now): re-derive it from the job records and drive it on. */
  recheck(id: string): Promise<void>;
  /** How long the agents of a driver that is gone may take to reconnect (held offline hosts are not skipped yet). */
  reconnectGraceMs(): number;
  /** How many late turns of rollout ID this hub noted (late.ts), as of the last review. */
  lateTurns(id: string): number;
  /** Review the late turns noted (once per sweep, before looking at the rollouts). */
  review(): void;
}

/** Every this many sweeps, the rollouts driven here are checked against the job records. */
const RECHECK_EVERY = 5;

const unfinished = (r: RolloutRecord): boolean => r.state === 'running' || r.state === 'halted';

export class RolloutTakeover {
  private sweeps = 0;
  /** Unfinished rollouts this hub drives, as of the last sweep (to say when another hub took one). */
  private readonly driven = new Set<string>();

  constructor(private readonly d: TakeoverDeps) {}

  async sweep(): Promise<void> {
    if (!this.d.driving.mayAct()) return;
    const recheck = this.sweeps++ % RECHECK_EVERY === 0;
    this.d.review();
    const work: Array<Promise<void>> = [];
    for (const r of this.d.store.all()) {
      const mine = drivenBy(r.driver, this.d.driving);
      if (this.driven.has(r.id) && !mine) {
        this.d.log.warn({ rollout: r.id, driver: r.driver?.hub ?? null, epoch: r.driver?.epoch ?? null }, 'another hub drives the rollout now; this hub no longer acts on it');
      }
      if (mine && unfinished(r)) this.driven.add(r.id);
      else this.driven.delete(r.id);
      if (!this.needsDriver(r)) continue;
      if (mine) {
        if (recheck) work.push(this.d.inQueue(r.id, () => this.d.recheck(r.id)).catch((err: Error) => this.d.log.error({ rollout: r.id, err: err.message }, 'rollout check failed')));
      } else if ((!r.driver || !this.d.driving.alive(r.driver)) && this.d.driving.successor()) {
        work.push(this.d.inQueue(r.id, () => this.takeOver(r.id)).catch((err: Error) => this.d.log.error({ rollout: r.id, err: err.message }, 'cannot take the rollout over')));
      }
    }
    await Promise.all(work);
  }

  /** This hub is to drive rollout ID now (resume, abort at any hub): take it over unless it does already. Run in ID's queue. */
  async claimHere(id: string): Promise<{ r: RolloutRecord; claimed: boolean }> {
    const r = this.d.store.require(id);
    if (!unfinished(r)) return { r, claimed: false }; // done or aborted: nothing to drive (the op says so)
    if (!this.d.driving.mayAct()) throw notCurrent(this.d.driving.hub);
    if (drivenBy(r.driver, this.d.driving)) return { r, claimed: false };
    const mine = await this.d.store.claim(r, this.claimOf(r));
    if (!mine) throw new BentoError('STATE_CONFLICT', `rollout ${id} changed at another hub just now; try again`);
    this.d.log.info({ rollout: id, from: r.driver?.hub ?? null, epoch: mine.driver!.epoch }, 'driving the rollout from this hub now (resumed or aborted here)');
    return { r: mine, claimed: true };
  }

  /** The driver of rollout ID is gone: become its driver, then re-derive it and drive it on. */
  private async takeOver(id: string): Promise<void> {
    const r = this.d.store.get(id);
    if (!r || !this.needsDriver(r) || drivenBy(r.driver, this.d.driving) || (r.driver && this.d.driving.alive(r.driver))) return;
    const mine = await this.d.store.claim(r, this.claimOf(r));
    if (!mine) return; // another hub was first (or the old driver wrote): the next sweep looks again
    if (!unfinished(r)) {
      this.d.log.info({ rollout: id, state: r.state, from: r.driver?.hub ?? null, hosts: this.d.store.unsettled(id), late: this.d.lateTurns(id), epoch: mine.driver!.epoch },
        this.d.store.unsettled(id) > 0 ? 'took a finished rollout over to record the results of its hosts still running or queued' : 'took a finished rollout over to record a turn whose trigger landed late');
    } else {
      this.d.log.warn({ rollout: id, from: r.driver?.hub ?? null, epoch: mine.driver!.epoch },
        r.driver?.hub === this.d.driving.hub ? 'driving the rollout again after a restart' : 'took the rollout over from a hub that is gone');
      this.driven.add(id);
    }
    await this.d.recheck(id);
  }

  /** Does R need a driver: unfinished, or finished with hosts whose result is still to come, or with a late turn to record? */
  private needsDriver(r: RolloutRecord): boolean {
    return unfinished(r) || this.d.store.unsettled(r.id) > 0 || this.d.lateTurns(r.id) > 0;
  }

  /**
   * This hub's claim on R. From a driver that is gone (a sweep's takeover, or
   * resume/abort here right after it died), its agents are reconnecting: their
   * hosts get the reconnect grace, kept in the record (store.ts claim).
   */
  private claimOf(r: RolloutRecord): Parameters<RolloutStore['claim']>[1] {
    const driver = { hub: this.d.driving.hub, run: this.d.driving.run };
    if (r.driver && this.d.driving.alive(r.driver)) return { driver };
    return { driver, holdOfflineUntil: Date.now() + this.d.reconnectGraceMs() };
  }
}
