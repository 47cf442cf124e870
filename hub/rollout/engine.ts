// The rollout engine: runs in the hub daemon, not in the CLI that asked (the
// admin may disconnect), and is advanced by the job records and the event
// bus: a job record that ends frees a slot and may settle a wave (whichever
// hub of a cluster wrote it), an agent connecting may be a host whose turn
// came while it was offline. Its state is the "rollouts" keyed store
// (records.ts).
//
// One hub drives each rollout (driver.ts): the one that started it, and when
// that one is gone (a restart; a dead hub of a cluster), the hub that takes
// it over re-derives it from its records and the job records (recover.ts),
// then drives it on. A hub acts only on the rollouts it drives, and only
// while it may act (in touch with the other hubs).
//
// Each rollout's steps run one at a time (a queue per rollout id), so a burst
// of job ends never decides on a half-written state. The decisions themselves
// are pure (decide.ts) and carried out by steps.ts; here is when.
import { customAlphabet } from 'nanoid';
import { BentoError } from '../../common/protocol/errors.js';
import type { RolloutOptions, RolloutSummary } from '../../common/protocol/rollout.js';
import { rolloutSummary } from './view.js';
import type { Logger } from '../../common/platform/log.js';
import type { EventBus } from '../events/types.js';
import { FINAL_STATES, type JobRecord } from '../store/jobs.js';
import { PerHostQueue } from '../jobs/per-host-queue.js';
import { RECOVERY_GRACE_MS } from '../jobs/recovery.js';
import { newRollout, overlapping } from './plan.js';
import { recoverRollout } from './recover.js';
import type { RolloutRecord } from './records.js';
import { LateTurns } from './late.js';
import type { RolloutStore } from './store.js';
import { drivesNow, notCurrent, type RolloutDriving } from './driver.js';
import { RolloutTakeover } from './takeover.js';
import { RolloutConnections } from './connections.js';
import { RolloutClaims } from './claims.js';
import { RolloutSteps, type RolloutScheduler } from './steps.js';

const newRolloutId = customAlphabet('23456789abcdefghjkmnpqrstuvwxyz', 8);
/** How often to look for rollouts whose driver is gone (takeover.ts). */
const SWEEP_MS = 1000;

export interface RolloutEngineDeps {
  store: RolloutStore;
  /** Job records: a host's result (their changes settle hosts), and results that arrived while another run drove. */
  jobs: { get(id: string): JobRecord | undefined; all(): JobRecord[]; watch(fn: (rec: JobRecord) => void): () => void };
  scheduler: RolloutScheduler;
  /** The same truth the scheduler dispatches on: a live session for the host (at any hub). */
  connected(host: string): boolean;
  /** Which hub drives which rollout (driver.ts). */
  driving: RolloutDriving;
  bus: EventBus;
  log: Logger;
  /** How often to look for rollouts of a dead driver, and (5x) to re-check the ones driven here. Default 1 s. */
  sweepMs?: number;
}

export interface CreateRollout {
  /** In turn order (plan.ts orderHosts). */
  hosts: string[];
  selection: RolloutRecord['selection'];
  options: RolloutOptions;
}

export class RolloutEngine {
  private readonly serial = new PerHostQueue();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly connections: RolloutConnections;
  private readonly steps: RolloutSteps;
  private unwatchJobs: (() => void) | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;
  private reconnectGraceMs = RECOVERY_GRACE_MS;
  private readonly takeover: RolloutTakeover;
  private readonly claims: RolloutClaims;
  /** Late turns seen in the job records, for whichever hub drives their rollout (late.ts). */
  private readonly late: LateTurns;

  constructor(private readonly d: RolloutEngineDeps) {
    this.late = new LateTurns({ lateTurn: (j) => d.store.lateTurn(j), turnOf: (id) => d.store.turnOf(id), jobs: d.jobs });
    this.takeover = new RolloutTakeover({
      store: d.store, driving: d.driving, log: d.log,
      inQueue: (id, fn) => this.serial.run(id, fn),
      recheck: (id) => this.recheck(id),
      reconnectGraceMs: () => this.reconnectGraceMs,
      lateTurns: (id) => this.late.of(id).length,
      review: () => this.late.review(),
    });
    this.claims = new RolloutClaims({ store: d.store, driving: d.driving, log: d.log });
    this.connections = new RolloutConnections({ bus: d.bus, store: d.store, driving: d.driving, kick: (id) => this.kick(id) });
    this.steps = new RolloutSteps({
      store: d.store, jobs: d.jobs, scheduler: d.scheduler, connected: (h) => d.connected(h), driving: d.driving, log: d.log,
      wakeAt: (id, at) => this.wakeAt(id, at),
      closed: () => this.closed,
    });
  }

  get store(): RolloutStore {
    return this.d.store;
  }

  /** Every kept rollout, newest first. */
  summaries(): RolloutSummary[] {
    return this.d.store.all().map((r) => rolloutSummary(r, this.d.store.memberMap(r.id)));
  }

  /** The ones `status` and the dashboard show: running or halted. */
  active(): RolloutSummary[] {
    return this.d.store.all().filter((r) => r.state === 'running' || r.state === 'halted').map((r) => rolloutSummary(r, this.d.store.memberMap(r.id)));
  }

  /**
   * After the scheduler recovered: take over the unfinished rollouts whose
   * driver is gone (after a restart: all of them, driven by the old run),
   * re-derive them, and drive the running ones on. Their agents may be
   * reconnecting: for `reconnectGraceMs` an offline host of a rollout taken
   * over is not yet skipped, queued or waited for, as the scheduler gives
   * jobs in flight the same grace (recovery.ts).
   */
  async start(opts: { reconnectGraceMs?: number } = {}): Promise<void> {
    this.reconnectGraceMs = opts.reconnectGraceMs ?? RECOVERY_GRACE_MS;
    this.unwatchJobs = this.d.jobs.watch((rec) => this.onJob(rec));
    this.late.noteAll();
    await this.takeover.sweep();
    this.sweeper = setInterval(() => {
      if (this.closed) return;
      void this.takeover.sweep();
      // Hosts of finished (or never started) rollouts; a failure is logged, never an unhandled rejection.
      this.claims.sweep().catch((err: Error) => this.d.log.warn({ err: err.message }, 'cannot release rollout host claims; the next sweep tries again'));
      this.connections.sync(); // a rollout aborted, or taken over by another hub, no longer needs the bus
    }, this.d.sweepMs ?? SWEEP_MS);
    this.sweeper.unref();
  }

  close(): void {
    this.closed = true;
    this.connections.close();
    this.claims.close();
    this.unwatchJobs?.();
    if (this.sweeper) clearInterval(this.sweeper);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  async create(c: CreateRollout): Promise<RolloutRecord> {
    return this.serial.run('', async () => {
      if (!this.d.driving.mayAct()) throw notCurrent(this.d.driving.hub);
      const conflict = overlapping(this.d.store.all(), c.hosts);
      if (conflict) throw new BentoError('ROLLOUT_CONFLICT', conflict);
      const r: RolloutRecord = { ...newRollout(`r-${newRolloutId()}`, c), driver: { hub: this.d.driving.hub, run: this.d.driving.run, epoch: 1 }, round: 0 };
      // Its hosts are claimed first: the view above may not show a rollout another hub started just now (claims.ts).
      await this.claims.start(r.id, c.hosts, 1, () => this.d.store.save(r)); // durable before anyone hears of it
      this.d.log.info({ rollout: r.id, action: r.action, hosts: c.hosts.length, waves: r.waves.map((w) => w.length), maxInFlight: r.opts.maxInFlight }, 'rollout started');
      await this.d.store.prune().catch((err: Error) => { this.d.log.warn({ err: err.message }, 'cannot forget old rollouts'); });
      this.kick(r.id);
      return r;
    });
  }

  /** Resume a halted rollout; at a hub that does not drive it, this hub takes it over first. */
  resume(id: string, o: { retryFailed: boolean }): Promise<RolloutRecord> {
    return this.serial.run(id, async () => {
      const r = await this.driveHere(id, (cur) => {
        if (cur.state !== 'halted') throw new BentoError('ROLLOUT_STATE', `rollout ${id} is ${cur.state}; only a halted rollout can be resumed`);
      });
      const epoch = r.driver!.epoch;
      // The failures the admin has seen either run again or no longer count against their wave.
      for (const m of this.d.store.membersOf(id)) {
        if (m.state !== 'failed' || m.acknowledged) continue;
        if (o.retryFailed) await this.d.store.forget(id, m.host, epoch);
        else await this.d.store.saveMember({ ...m, acknowledged: true, epoch });
      }
      // The admin has looked at the canary wave by now: --pause-after-canary does not pause a second time.
      // A new round: a host's turn from now on is a new job (records.ts turnJobId).
      // When: a job of an earlier round's turn requested after this is a trigger that landed late (late.ts).
      const round = (r.round ?? 0) + 1;
      const next: RolloutRecord = { ...r, state: 'running', reason: null, round, resumed: { round, at: new Date().toISOString() }, opts: { ...r.opts, pauseAfterCanary: false } };
      await this.d.store.save(next);
      this.d.log.info({ rollout: id, retryFailed: o.retryFailed }, 'rollout resumed');
      await this.advance(id);
      return this.d.store.get(id)!;
    });
  }

  /** Abort it; at a hub that does not drive it, this hub takes it over first. */
  abort(id: string): Promise<RolloutRecord> {
    return this.serial.run(id, async () => {
      const r = await this.driveHere(id, (cur) => {
        if (cur.state === 'done' || cur.state === 'aborted') throw new BentoError('ROLLOUT_STATE', `rollout ${id} is already ${cur.state}`);
      });
      await this.steps.abort(r);
      return this.d.store.get(id)!;
    });
  }

  /** Drive a rollout on, in its queue; failures are logged (the next event tries again). */
  private kick(id: string): void {
    if (this.closed) return;
    this.serial.run(id, () => this.advance(id)).catch((err: Error) => this.d.log.error({ rollout: id, err: err.message }, 'rollout step failed'));
  }

  /**
   * This hub drives rollout ID from now on (resume, abort at any hub); run in
   * its queue. CHECK (throws when the operation does not apply) runs on the
   * record before the claim, so a refused operation never moves the driver
   * away from a live hub, and again after it: another hub may have changed the
   * rollout in between.
   */
  private async driveHere(id: string, check: (r: RolloutRecord) => void): Promise<RolloutRecord> {
    check(this.d.store.require(id));
    const { r, claimed } = await this.takeover.claimHere(id);
    if (claimed) await this.recover(r);
    const cur = this.d.store.require(id);
    check(cur);
    return cur;
  }

  /** Re-derive rollout ID from the job records, then drive it on. */
  private async recheck(id: string): Promise<void> {
    const r = this.d.store.get(id);
    if (!drivesNow(r, this.d.driving)) return;
    await this.recover(r);
    await this.adoptLate(id);
    if (this.d.store.get(id)?.state === 'running') await this.advance(id);
  }

  /** The late turns of rollout ID this hub noted and still sees (this hub drives it): the hosts get their records back. */
  private async adoptLate(id: string): Promise<void> {
    for (const { jobId, host } of this.late.of(id)) {
      const rec = this.d.jobs.get(jobId);
      const r = this.d.store.get(id);
      if (!rec || !drivesNow(r, this.d.driving) || this.d.store.lateTurn(rec)?.host !== host) continue;
      await this.steps.adopt(r, host, rec);
    }
  }

  private recover(r: RolloutRecord): Promise<void> {
    return recoverRollout({ store: this.d.store, jobs: this.d.jobs, log: this.d.log, settle: (m, rec) => this.steps.settle(r, m, rec) }, r);
  }

  /** A job record changed (any hub's write): the host whose turn it carries may be settled (or get its record back: lateTurn). */
  private onJob(rec: JobRecord): void {
    // A late turn is noted even when another hub drives its rollout: if that hub is gone before it adopts
    // the turn, the successor takes the rollout over for it (takeover.ts), finished or not.
    const t = this.late.seen(rec);
    if (!t) return;
    this.serial.run(t.id, () => this.jobChanged(t.id, t.host, rec)).catch((err: Error) => this.d.log.error({ rollout: t.id, host: t.host, err: err.message }, 'cannot record a rollout host\'s result'));
  }

  private async jobChanged(id: string, host: string, rec: JobRecord): Promise<void> {
    const r = this.d.store.get(id);
    const m = this.d.store.member(id, host);
    if (!drivesNow(r, this.d.driving)) return;
    if (this.d.store.lateTurn(rec)?.host === host) {
      // Its turn's trigger landed after the driver forgot it (late.ts): the job runs, so it counts.
      await this.steps.adopt(r, host, rec);
      if (this.d.store.get(id)?.state === 'running') await this.advance(id);
      return;
    }
    if (!m || m.jobId !== rec.id) return;
    if (!FINAL_STATES.has(rec.state)) {
      // A queued host came back and its job runs now.
      if (m.state === 'queued' && rec.state !== 'queued') await this.d.store.saveMember({ ...m, state: 'running', since: new Date().toISOString(), epoch: r.driver!.epoch });
      return;
    }
    await this.steps.settle(r, m, rec);
    if (this.d.store.get(id)?.state === 'running') await this.advance(id);
  }

  /** Carry out decisions (steps.ts), hearing connects while there is a running rollout to drive (connections.ts). */
  private async advance(id: string): Promise<void> {
    this.connections.sync();
    try {
      await this.steps.advance(id);
    } finally {
      this.connections.sync();
    }
  }

  /** One timer per rollout, for the next host waited for to time out. */
  private wakeAt(id: string, at: number | null): void {
    const old = this.timers.get(id);
    if (old) clearTimeout(old);
    this.timers.delete(id);
    if (at === null || this.closed) return;
    const t = setTimeout(() => { this.timers.delete(id); this.kick(id); }, Math.max(0, at - Date.now()) + 50);
    t.unref();
    this.timers.set(id, t);
  }
}
