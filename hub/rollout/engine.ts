// The rollout engine: runs in the hub daemon, not in the CLI that asked (the
// admin may disconnect), and is advanced by the event bus: a job's end frees
// a slot and may settle a wave, an agent connecting may be a host whose turn
// came while it was offline. Its state is the "rollouts" keyed store
// (records.ts); after a hub restart it is re-derived from that store and the
// job records (recover.ts), then driven on.
//
// Each rollout's steps run one at a time (a queue per rollout id), so a burst
// of job ends never decides on a half-written state. The decisions themselves
// are pure (decide.ts); here they are carried out.
import { customAlphabet } from 'nanoid';
import type { Action } from '../../common/protocol/messages.js';
import type { TriggerDisposition } from '../../common/protocol/admin.js';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import type { RolloutOptions, RolloutSummary } from '../../common/protocol/rollout.js';
import { doneReason, rolloutSummary } from './view.js';
import type { Logger } from '../../common/platform/log.js';
import type { EventBus, HubEvent, JobBusEvent, Subscription } from '../events/types.js';
import { FINAL_STATES, type JobRecord } from '../store/jobs.js';
import { PerHostQueue } from '../jobs/per-host-queue.js';
import { RECOVERY_GRACE_MS } from '../jobs/recovery.js';
import { newRollout, overlapping, waveOf } from './plan.js';
import { decide } from './decide.js';
import { afterEnd, recoverRollouts } from './recover.js';
import type { MemberRecord, RolloutRecord } from './records.js';
import type { RolloutStore } from './store.js';

const newRolloutId = customAlphabet('23456789abcdefghjkmnpqrstuvwxyz', 8);

export interface RolloutEngineDeps {
  store: RolloutStore;
  /** Job records: a job's health, and results that arrived while the hub was down. */
  jobs: { get(id: string): JobRecord | undefined; all(): JobRecord[] };
  scheduler: {
    trigger(host: string, action: Action, queue: boolean): Promise<{ jobId: string; disposition: TriggerDisposition }>;
    cancelQueued(host: string, jobId: string, reason: string): Promise<boolean>;
  };
  /** The same truth the scheduler dispatches on: a live session for the host. */
  connected(host: string): boolean;
  bus: EventBus;
  log: Logger;
}

export interface CreateRollout {
  /** In turn order (plan.ts orderHosts). */
  hosts: string[];
  selection: RolloutRecord['selection'];
  options: RolloutOptions;
}

export class RolloutEngine {
  private readonly serial = new PerHostQueue();
  /** job id -> the rollout host it carries. */
  private readonly byJob = new Map<string, { id: string; host: string }>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Queued jobs being cancelled on purpose: their "interrupted" end is not a failure. */
  private readonly cancelling = new Set<string>();
  private sub: Subscription | null = null;
  private closed = false;
  /** Rollouts found unfinished at start, and until when their offline hosts may still be reconnecting. */
  private readonly recovered = new Set<string>();
  private reconnectUntil = 0;

  constructor(private readonly d: RolloutEngineDeps) {}

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
   * After the scheduler recovered: re-derive every unfinished rollout, then
   * drive the running ones on. Their agents are reconnecting to this new hub:
   * for `reconnectGraceMs` an offline host is not yet skipped, queued or
   * waited for, as the scheduler gives jobs in flight the same grace (recovery.ts).
   */
  async start(opts: { reconnectGraceMs?: number } = {}): Promise<void> {
    this.sub = this.d.bus.subscribe({ all: true }, (e) => this.onEvent(e));
    await recoverRollouts({ store: this.d.store, jobs: this.d.jobs, log: this.d.log, track: (jobId, id, host) => this.byJob.set(jobId, { id, host }) });
    this.reconnectUntil = Date.now() + (opts.reconnectGraceMs ?? RECOVERY_GRACE_MS);
    for (const r of this.d.store.all()) {
      // A halted one too: resumed within the grace, its offline hosts may still be on their way back.
      if (r.state === 'running' || r.state === 'halted') this.recovered.add(r.id);
      if (r.state === 'running') this.kick(r.id);
    }
  }

  close(): void {
    this.closed = true;
    this.sub?.unsubscribe();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  async create(c: CreateRollout): Promise<RolloutRecord> {
    return this.serial.run('', async () => {
      const conflict = overlapping(this.d.store.all(), c.hosts);
      if (conflict) throw new BentoError('ROLLOUT_CONFLICT', conflict);
      const r = newRollout(`r-${newRolloutId()}`, c);
      await this.d.store.save(r); // durable before anyone hears of it
      this.d.log.info({ rollout: r.id, action: r.action, hosts: c.hosts.length, waves: r.waves.map((w) => w.length), maxInFlight: r.opts.maxInFlight }, 'rollout started');
      const forgotten = new Set(await this.d.store.prune().catch((err: Error) => { this.d.log.warn({ err: err.message }, 'cannot forget old rollouts'); return []; }));
      if (forgotten.size) for (const [jobId, t] of this.byJob) if (forgotten.has(t.id)) this.byJob.delete(jobId);
      this.kick(r.id);
      return r;
    });
  }

  resume(id: string, o: { retryFailed: boolean }): Promise<RolloutRecord> {
    return this.serial.run(id, async () => {
      const r = this.d.store.require(id);
      if (r.state !== 'halted') throw new BentoError('ROLLOUT_STATE', `rollout ${id} is ${r.state}; only a halted rollout can be resumed`);
      // The failures the admin has seen either run again or no longer count against their wave.
      for (const m of this.d.store.membersOf(id)) {
        if (m.state !== 'failed' || m.acknowledged) continue;
        if (o.retryFailed) await this.d.store.forget(id, m.host);
        else await this.d.store.saveMember({ ...m, acknowledged: true });
      }
      // The admin has looked at the canary wave by now: --pause-after-canary does not pause a second time.
      const next: RolloutRecord = { ...r, state: 'running', reason: null, opts: { ...r.opts, pauseAfterCanary: false } };
      await this.d.store.save(next);
      this.d.log.info({ rollout: id, retryFailed: o.retryFailed }, 'rollout resumed');
      await this.advance(id);
      return this.d.store.get(id)!;
    });
  }

  abort(id: string): Promise<RolloutRecord> {
    return this.serial.run(id, async () => {
      const r = this.d.store.require(id);
      if (r.state === 'done' || r.state === 'aborted') throw new BentoError('ROLLOUT_STATE', `rollout ${id} is already ${r.state}`);
      const reason = `aborted by the admin in wave ${r.wave + 1} of ${r.waves.length}`;
      await this.d.store.save({ ...r, state: 'aborted', reason, endedAt: new Date().toISOString() });
      await this.stopWaiting(r, 'abort');
      this.d.log.warn({ rollout: id }, 'rollout aborted');
      return this.d.store.get(id)!;
    });
  }

  /** Drive a rollout on, in its queue; failures are logged (the next event tries again). */
  private kick(id: string): void {
    if (this.closed) return;
    this.serial.run(id, () => this.advance(id)).catch((err: Error) => this.d.log.error({ rollout: id, err: err.message }, 'rollout step failed'));
  }

  private onEvent(e: HubEvent): void {
    if (e.kind === 'job') {
      const t = this.byJob.get(e.event.jobId);
      if (!t) return;
      const ev = e.event;
      this.serial.run(t.id, () => this.jobEvent(t.id, t.host, ev)).catch((err: Error) => this.d.log.error({ rollout: t.id, host: t.host, err: err.message }, 'cannot record a rollout host\'s result'));
    } else if (e.kind === 'connected') {
      for (const r of this.d.store.all()) {
        if (r.state !== 'running') continue;
        const m = this.d.store.member(r.id, e.host);
        const w = waveOf(r, e.host);
        if ((!m || m.state === 'waiting') && w !== -1 && w <= r.wave) this.kick(r.id);
      }
    }
  }

  private async jobEvent(id: string, host: string, ev: JobBusEvent): Promise<void> {
    const m = this.d.store.member(id, host);
    if (!m || m.jobId !== ev.jobId) return;
    if (ev.ev === 'started') {
      // A queued host came back and its job runs now.
      if (m.state === 'queued') await this.d.store.saveMember({ ...m, state: 'running', since: new Date().toISOString() });
      return;
    }
    if (ev.ev !== 'end' || this.cancelling.has(ev.jobId)) return;
    await this.settle(m, this.d.jobs.get(ev.jobId) ?? null, { outcome: ev.outcome, reason: ev.reason ?? null });
    const r = this.d.store.get(id);
    if (r?.state === 'running') await this.advance(id);
  }

  /** A host's job ended: healthy only on success (the agent reports it after its rollback window and health check). */
  private async settle(m: MemberRecord, rec: JobRecord | null, end: { outcome: string; reason: string | null }): Promise<void> {
    const next = afterEnd(m, { ...end, health: rec?.health ?? null });
    // The same result again (an agent replaying a result whose ack it missed): a failure resumed past stays acknowledged.
    if (next.state === m.state && next.reason === m.reason) return;
    await this.d.store.saveMember(next);
  }

  /** Carry out decisions until the rollout needs an event to go on. */
  private async advance(id: string): Promise<void> {
    // Bounded: each round settles or starts at least one host, or moves a wave on.
    for (let round = 0; round < 10_000 && !this.closed; round++) {
      const r = this.d.store.get(id);
      if (!r || r.state !== 'running') return;
      const now = Date.now();
      const holdOfflineUntil = this.recovered.has(id) && now < this.reconnectUntil ? this.reconnectUntil : null;
      const d = decide({ rollout: r, member: (h) => this.d.store.member(id, h), connected: (h) => this.d.connected(h), now, holdOfflineUntil });
      if (d.halt) return this.halt(r, d.halt);
      const at = new Date(now).toISOString();
      const mark = (host: string, state: MemberRecord['state'], reason: string | null): Promise<void> =>
        this.d.store.saveMember({ kind: 'member', rollout: id, host, wave: waveOf(r, host), state, jobId: null, since: at, reason, health: null });
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
      this.wakeAt(id, d.wakeAt);
      if (!changed) return;
    }
  }

  /** Start one host's turn; false when it turned out to be offline (decided again next round). */
  private async startHost(r: RolloutRecord, host: string, queue: boolean): Promise<boolean> {
    const base: MemberRecord = {
      kind: 'member', rollout: r.id, host, wave: waveOf(r, host), state: queue ? 'queued' : 'running',
      jobId: null, since: new Date().toISOString(), reason: null, health: null,
    };
    // Durable before the trigger: a hub that dies in between finds the job by host and time (recover.ts), never starts a second one.
    await this.d.store.saveMember(base);
    try {
      const t = await this.d.scheduler.trigger(host, r.action, queue);
      this.byJob.set(t.jobId, { id: r.id, host });
      const m: MemberRecord = { ...base, jobId: t.jobId, state: t.disposition === 'queued' && !this.d.connected(host) ? 'queued' : 'running' };
      await this.d.store.saveMember(m);
      const rec = this.d.jobs.get(t.jobId);
      if (rec && FINAL_STATES.has(rec.state)) await this.settle(m, rec, { outcome: rec.state, reason: rec.reason });
      return true;
    } catch (err) {
      const e = asBentoError(err);
      if (e.code === 'HOST_OFFLINE') {
        await this.d.store.forget(r.id, host);
        return false;
      }
      await this.d.store.saveMember({ ...base, state: 'failed', reason: `not started: ${e.message} [${e.code}]` });
      return true;
    }
  }

  private async halt(r: RolloutRecord, reason: string): Promise<void> {
    await this.d.store.save({ ...r, state: 'halted', reason });
    await this.stopWaiting(r, 'halt');
    this.d.log.warn({ rollout: r.id, wave: r.wave + 1, reason }, 'rollout halted');
  }

  /**
   * Halt: hosts waited for or queued go back to pending (a resume gives them
   * their turn again). Abort: they are cancelled. Jobs already running go on:
   * stopping a switch half way is worse than letting it finish.
   */
  private async stopWaiting(r: RolloutRecord, why: 'halt' | 'abort'): Promise<void> {
    this.wakeAt(r.id, null);
    for (const m of this.d.store.membersOf(r.id)) {
      if (m.state !== 'waiting' && m.state !== 'queued') continue;
      if (m.state === 'queued' && m.jobId) {
        this.cancelling.add(m.jobId);
        try {
          const cancelled = await this.d.scheduler.cancelQueued(m.host, m.jobId, `cancelled: rollout ${r.id} was ${why === 'halt' ? 'halted' : 'aborted'} before the host connected`);
          if (!cancelled) continue; // it started meanwhile: its result still counts
        } finally {
          this.cancelling.delete(m.jobId);
        }
      }
      if (why === 'halt') await this.d.store.forget(r.id, m.host);
      else await this.d.store.saveMember({ ...m, state: 'cancelled', since: new Date().toISOString(), reason: 'the rollout was aborted before its job ran' });
    }
  }

  private async finish(r: RolloutRecord): Promise<void> {
    const reason = doneReason(this.d.store.membersOf(r.id));
    await this.d.store.save({ ...r, state: 'done', reason, endedAt: new Date().toISOString() });
    this.wakeAt(r.id, null);
    this.d.log.info({ rollout: r.id, result: reason }, 'rollout done');
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
