// Carrying out a rollout's decisions (decide.ts) at the hub that drives it:
// hosts offline at their turn are marked, turns start, a wave moves on, the
// rollout halts, is aborted or is done; a host whose job ended is settled.
// The engine (engine.ts) says when (a job's end, a connect, a timer, an
// admin's request) and runs each call in the rollout's queue, so a step
// never sees a half-written state; what is written here carries the driver's
// epoch, so a hub that stopped driving cannot overwrite its successor.
import type { Action } from '../../common/protocol/messages.js';
import type { TriggerDisposition } from '../../common/protocol/admin.js';
import { asBentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { FINAL_STATES, type JobRecord } from '../store/jobs.js';
import { waveOf } from './plan.js';
import { decide } from './decide.js';
import { afterEnd } from './recover.js';
import { doneReason } from './view.js';
import { turnJobId, type MemberRecord, type RolloutRecord } from './records.js';
import type { RolloutStore } from './store.js';
import { drivesNow, type RolloutDriving } from './driver.js';
import { withdrawWaiting } from './withdraw.js';

export interface RolloutScheduler {
  /** JOBID: the turn's job id (records.ts turnJobId); a job that has it already is answered, not started again. */
  trigger(t: { host: string; action: Action; queue: boolean; jobId: string }): Promise<{ jobId: string; disposition: TriggerDisposition }>;
  cancelQueued(host: string, jobId: string, reason: string): Promise<boolean>;
}

export interface RolloutStepsDeps {
  store: RolloutStore;
  jobs: { get(id: string): JobRecord | undefined };
  scheduler: RolloutScheduler;
  /** The same truth the scheduler dispatches on: a live session for the host (at any hub). */
  connected(host: string): boolean;
  driving: RolloutDriving;
  log: Logger;
  /** Drive rollout ID on at AT (the next host waited for times out); null: no timer. */
  wakeAt(id: string, at: number | null): void;
  /** The engine closed: no further rounds. */
  closed(): boolean;
}

export class RolloutSteps {
  constructor(private readonly d: RolloutStepsDeps) {}

  /** Carry out decisions until rollout ID needs an event to go on. */
  async advance(id: string): Promise<void> {
    // Bounded: each round settles or starts at least one host, or moves a wave on.
    for (let round = 0; round < 10_000 && !this.d.closed(); round++) {
      const r = this.d.store.get(id);
      if (!drivesNow(r, this.d.driving) || r.state !== 'running') return;
      const now = Date.now();
      // Its driver changed lately (a restart, a dead hub): offline hosts may still be reconnecting (records.ts).
      const hold = r.holdOfflineUntil ? Date.parse(r.holdOfflineUntil) : 0;
      const holdOfflineUntil = now < hold ? hold : null;
      const d = decide({ rollout: r, member: (h) => this.d.store.member(id, h), connected: (h) => this.d.connected(h), now, holdOfflineUntil });
      if (d.halt) return this.halt(r, d.halt);
      const at = new Date(now).toISOString();
      const mark = (host: string, state: MemberRecord['state'], reason: string | null): Promise<void> =>
        this.d.store.saveMember({ kind: 'member', rollout: id, host, wave: waveOf(r, host), state, jobId: null, since: at, reason, health: null, epoch: r.driver!.epoch });
      let changed = d.expire.length + d.skip.length + d.wait.length > 0;
      await Promise.all([
        ...d.expire.map((h) => mark(h, 'failed', `offline for ${Math.round(r.opts.offlineTimeoutMs / 1000)} s at its turn (--offline wait)`)),
        ...d.skip.map((h) => mark(h, 'skipped', 'offline at its turn (--offline skip)')),
        ...d.wait.map((h) => mark(h, 'waiting', 'offline at its turn; waiting for it to connect (--offline wait)')),
      ]);
      const started = await Promise.all([...d.start.map((h) => this.startHost(r, h, false)), ...d.queue.map((h) => this.startHost(r, h, true))]);
      if (started.some(Boolean)) changed = true;
      if (d.advance) {
        const pause = d.pause ? 'paused after the canary wave, as asked (--pause-after-canary); `bento-hub rollout resume` goes on' : null;
        await this.d.store.save({ ...r, wave: r.wave + 1, state: pause ? 'halted' : 'running', reason: pause });
        this.d.log.info({ rollout: id, wave: r.wave + 2, hosts: r.waves[r.wave + 1]!.length, paused: !!pause }, 'rollout wave begins');
        if (pause) return;
        continue;
      }
      if (d.done) return this.finish(r);
      this.d.wakeAt(id, d.wakeAt);
      if (!changed) return;
    }
  }

  /** A host's job ended: healthy only on success (the agent reports it after its rollback window and health check). */
  async settle(r: RolloutRecord, m: MemberRecord, rec: JobRecord): Promise<void> {
    // Cancelled on purpose (abort): the withdrawn job's "interrupted" is not the host's result.
    if (m.state === 'cancelled' || m.state === 'skipped' || m.state === 'waiting') return;
    const next = afterEnd(m, { outcome: rec.state, reason: rec.reason, health: rec.health ?? null });
    // The same result again (an agent replaying a result whose ack it missed): a failure resumed past stays acknowledged.
    if (next.state === m.state && next.reason === m.reason) return;
    await this.d.store.saveMember({ ...next, ...(next.state === m.state ? { acknowledged: m.acknowledged } : {}), epoch: r.driver?.epoch ?? 0 });
    if (m.state === 'running' || m.state === 'queued') this.d.log.debug({ rollout: r.id, host: m.host, jobId: rec.id, state: next.state }, 'rollout host settled');
    // A done rollout's late result (a queued host that ran after it finished) halts nothing, but its
    // summary ("1 queued until they connect") would go stale: it is written again.
    const cur = this.d.store.get(r.id);
    if (cur?.state === 'done') await this.d.store.save({ ...cur, reason: doneReason(this.d.store.membersOf(r.id)) });
  }

  /**
   * HOST has no record but its turn's job REC exists: a trigger still on its
   * way when the driver changed (abort or takeover at another hub) landed
   * after the new driver, not finding the job, forgot the turn (recover.ts).
   * A job that runs or ran is the host's turn: its record comes back with it,
   * so its result is recorded (and counts, as any turn's). A queued one in a
   * halted or aborted rollout is withdrawn instead, as a halt or abort does.
   */
  async adopt(r: RolloutRecord, host: string, rec: JobRecord): Promise<void> {
    const base: MemberRecord = {
      kind: 'member', rollout: r.id, host, wave: waveOf(r, host), state: 'running',
      jobId: rec.id, since: new Date().toISOString(), reason: null, health: null, epoch: r.driver!.epoch,
    };
    if (rec.state === 'queued') {
      if (r.state === 'running') await this.d.store.saveMember({ ...base, state: 'queued' });
      // Withdrawn: its record ends interrupted, never started (below). Not withdrawn: it started, and its next record change adopts it.
      else await this.d.scheduler.cancelQueued(host, rec.id, `cancelled: rollout ${r.id} was ${r.state} before the host connected`);
      return;
    }
    // Ended without ever starting: withdrawn from the queue (withdraw.ts, or just above); nothing ran.
    if (FINAL_STATES.has(rec.state) && rec.startedAt === null) return;
    await this.d.store.saveMember(base);
    this.d.log.info({ rollout: r.id, host, jobId: rec.id, state: rec.state }, 'a rollout host\'s turn started after its driver changed; its job is tracked');
    if (FINAL_STATES.has(rec.state)) await this.settle(r, base, rec);
  }

  /** The admin aborts R (this hub drives it, and it is neither done nor aborted). */
  async abort(r: RolloutRecord): Promise<void> {
    const reason = `aborted by the admin in wave ${r.wave + 1} of ${r.waves.length}`;
    await this.d.store.save({ ...r, state: 'aborted', reason, endedAt: new Date().toISOString() });
    this.d.wakeAt(r.id, null);
    await this.withdraw(r, 'abort');
    this.d.log.warn({ rollout: r.id }, 'rollout aborted');
  }

  /** Start one host's turn; false when it turned out to be offline (decided again next round). */
  private async startHost(r: RolloutRecord, host: string, queue: boolean): Promise<boolean> {
    const base: MemberRecord = {
      kind: 'member', rollout: r.id, host, wave: waveOf(r, host), state: queue ? 'queued' : 'running',
      jobId: null, since: new Date().toISOString(), reason: null, health: null, epoch: r.driver!.epoch,
    };
    // Durable before the trigger: a driver that takes over after this hub died in between finds the turn's
    // job (recover.ts), or triggers it with the same job id, which the scheduler starts once.
    await this.d.store.saveMember(base);
    try {
      const t = await this.d.scheduler.trigger({ host, action: r.action, queue, jobId: turnJobId(r, host) });
      const queued = t.disposition === 'queued' || this.d.jobs.get(t.jobId)?.state === 'queued';
      const m: MemberRecord = { ...base, jobId: t.jobId, state: queued && !this.d.connected(host) ? 'queued' : 'running' };
      await this.d.store.saveMember(m);
      // It may have ended before its host record named it (an instant job, or one another driver started).
      const rec = this.d.jobs.get(t.jobId);
      if (rec && FINAL_STATES.has(rec.state)) await this.settle(r, m, rec);
      return true;
    } catch (err) {
      const e = asBentoError(err);
      // Offline, or the holding hub did not answer in time and may have taken it (TRIGGER_UNCONFIRMED, the
      // turn's job id): the host's turn comes again, with the same job id. A job that did start shows up in
      // the records and gets the host its record back (adopt); a later trigger of the turn finds it.
      if (e.code === 'HOST_OFFLINE' || e.code === 'TRIGGER_UNCONFIRMED') {
        if (e.code === 'TRIGGER_UNCONFIRMED') this.d.log.warn({ rollout: r.id, host, jobId: turnJobId(r, host) }, 'a rollout host\'s trigger is unconfirmed (its hub did not answer); its turn is decided again');
        await this.d.store.forget(r.id, host, base.epoch!);
        return false;
      }
      await this.d.store.saveMember({ ...base, state: 'failed', reason: `not started: ${e.message} [${e.code}]` });
      return true;
    }
  }

  private async halt(r: RolloutRecord, reason: string): Promise<void> {
    await this.d.store.save({ ...r, state: 'halted', reason });
    this.d.wakeAt(r.id, null);
    await this.withdraw(r, 'halt');
    this.d.log.warn({ rollout: r.id, wave: r.wave + 1, reason }, 'rollout halted');
  }

  private async finish(r: RolloutRecord): Promise<void> {
    const reason = doneReason(this.d.store.membersOf(r.id));
    await this.d.store.save({ ...r, state: 'done', reason, endedAt: new Date().toISOString() });
    this.d.wakeAt(r.id, null);
    this.d.log.info({ rollout: r.id, result: reason }, 'rollout done');
  }

  private withdraw(r: RolloutRecord, why: 'halt' | 'abort'): Promise<void> {
    return withdrawWaiting({ store: this.d.store, cancelQueued: (h, id, reason) => this.d.scheduler.cancelQueued(h, id, reason) }, r, why);
  }
}
