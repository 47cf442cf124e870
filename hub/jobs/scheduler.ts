// Jobs per host: at most one active (dispatched or running) and at most one
// pending (a follow-up, or a --queue job for an offline host). Triggers that
// arrive while one is pending coalesce into it.
//
// Durability: a queued job, a job's end (before job.ack) and every recovery
// decision are on disk before anyone hears of them. A job sent straight to a
// connected agent is not waited for: the agent keeps it on its own disk from
// job.start to job.ack, so if the hub dies before the record is written, the
// agent's replayed result re-creates it (adopt.ts). That keeps an fsync off the
// trigger-to-start path (docs/performance.md).
import type { Action, AgentMessage, Hello, JobEnd, Outcome } from '../../common/protocol/messages.js';
import type { TriggerDisposition } from '../../common/protocol/admin.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { FINAL_STATES, type JobRecord, type JobStore } from '../store/jobs.js';
import type { EventBus } from '../events/types.js';
import type { AgentLink } from './agent-link.js';
import { prebuiltFields, prebuiltUnsupported, withPrebuilt, type Prebuilt } from './prebuilt.js';
import { PerHostQueue } from './per-host-queue.js';
import { ackWhenDurable } from './durable-ack.js';
import { newJob } from './job-ids.js';
import { Adopter } from './adopt.js';
import type { AdoptionLimiter } from './adopt-limits.js';
import { InFlightAtStart, RECOVERY_GRACE_MS } from './recovery.js';
import { GuardWindows } from './guard-windows.js';
import { OrphanSweep } from './orphans.js';
import type { HostHolders } from '../holders/types.js';

export interface TriggerResult { host: string; jobId: string; disposition: TriggerDisposition; action: Action }
export interface TriggerOptions { prebuilt?: Prebuilt; jobId?: string }

export interface SchedulerDeps {
  store: JobStore;
  /** The live connection of a host, if any (server/sessions.ts). */
  sessions: { get(host: string): AgentLink | undefined };
  /** Job events (started, output, end) go here. */
  bus: EventBus;
  /**
   * Which hub holds which host (hub/holders): a host another hub holds is not
   * this scheduler's to settle, and a job queued for a host nobody holds gets
   * the id every hub would give it (one pending job per host, cluster-wide).
   */
  holders: Pick<HostHolders, 'hubName' | 'holder' | 'queuedJobId' | 'settlesOrphans'>;
  log: Logger;
  /** Caps on jobs recorded on a host's word (adopt-limits.ts); absent: none. */
  adoption?: AdoptionLimiter;
}

export class Scheduler {
  private readonly active = new Map<string, string>();
  private readonly pending = new Map<string, string>();
  /** Per-host serialisation: admin triggers and agent messages for one host never interleave. */
  private readonly queue = new PerHostQueue();
  /** Records jobs the hub hears of but has no record of (adopt.ts). */
  private readonly adopter: Adopter;
  /** Guarded jobs (rollback guard, job.guarded): how long to wait for the agent after a disconnect. */
  private readonly guarded = new GuardWindows();
  /** Jobs in flight when this hub started, settled per host at its hello (recovery.ts). */
  private readonly inFlight = new InFlightAtStart();
  /** Jobs another hub left open for a host that moved here: settled the same way, at its hello here. */
  private readonly moved = new InFlightAtStart();
  private readonly orphans: OrphanSweep;

  constructor(private readonly deps: SchedulerDeps) {
    this.orphans = new OrphanSweep({
      store: deps.store, holders: deps.holders, sessions: deps.sessions, log: deps.log,
      settle: (host, id, reason) => this.queue.run(host, async () => {
        const cur = deps.store.get(id);
        if (!cur || FINAL_STATES.has(cur.state) || deps.holders.holder(host) || deps.sessions.get(host)) return;
        await this.finish(cur, { outcome: 'interrupted', reason });
      }),
    });
    this.adopter = new Adopter({
      store: deps.store, log: deps.log, active: this.active, interrupt: (rec, reason) => this.finish(rec, { outcome: 'interrupted', reason }),
      ...(deps.adoption ? { limiter: deps.adoption } : {}),
    });
  }

  /**
   * Rebuild in-memory state after a hub start. Writes nothing: queued jobs
   * wait for their host as before, and jobs in flight are settled at their
   * host's hello, or interrupted once `graceMs` passed without it (recovery.ts).
   */
  async recover(opts: { graceMs?: number } = {}): Promise<void> {
    for (const j of this.deps.store.all().sort((a, b) => a.requestedAt.localeCompare(b.requestedAt))) {
      if (j.state === 'queued') this.pending.set(j.host, j.id);
      else if (j.state === 'dispatched' || j.state === 'running') this.inFlight.add(j.host, j.id);
    }
    this.inFlight.startGrace(opts.graceMs ?? RECOVERY_GRACE_MS, (hosts) => {
      for (const host of hosts) {
        void this.queue.run(host, async () => {
          // "Has the host come back?" is "does any hub hold it?": another hub settles the jobs of hosts it holds.
          if (!this.deps.sessions.get(host) && !this.heldElsewhere(host)) await this.settleInFlight(host, null, `${RESTARTED}; waiting for the agent to report`);
        }).catch((err: Error) => this.deps.log.error({ host, err: err.message }, 'cannot record the jobs of a host that did not come back'));
      }
    });
  }

  /** A cluster: interrupt what dead hubs left open for hosts that never came back (orphans.ts). */
  startOrphanSweep(graceMs = RECOVERY_GRACE_MS): void {
    this.orphans.start(graceMs);
  }

  /** One pass of the orphan sweep (its own test drives it). */
  sweepOrphans(graceMs: number, now = Date.now()): void {
    this.orphans.sweep(graceMs, now);
  }

  /** Timers off (hub stop). */
  close(): void {
    this.orphans.close();
    this.inFlight.close();
    this.guarded.close();
  }

  /** Interrupt a host's jobs from before the hub started that its hello (null: it is gone) does not claim (recovery.ts). */
  private async settleInFlight(host: string, hello: Hello | null, reason: string, set = this.inFlight): Promise<void> {
    for (const id of set.unclaimed(host, hello)) {
      const rec = this.deps.store.get(id);
      if (rec && !FINAL_STATES.has(rec.state)) await this.finish(rec, { outcome: 'interrupted', reason });
    }
  }

  activeJob(host: string): JobRecord | undefined {
    const id = this.active.get(host);
    return id ? this.deps.store.get(id) : undefined;
  }

  /** The job waiting for a host (queued while it was offline, or a follow-up behind its active job). */
  queuedJob(host: string): JobRecord | undefined {
    const id = this.pending.get(host);
    return id ? this.deps.store.get(id) : undefined;
  }

  /**
   * `prebuilt`: switch to this store path instead of rebuilding on the host
   * (hub/jobs/prebuilt.ts). `jobId`: the id a new job gets, and a job that
   * has it already is answered (`coalesced`) instead of started again: a
   * rollout names each host's turn (hub/rollout/records.ts turnJobId), so two
   * hubs that both think they drive it start that turn once.
   */
  trigger(host: string, action: Action, queue: boolean, o: TriggerOptions = {}): Promise<TriggerResult> {
    return this.queue.run(host, () => this.triggerNow(host, action, queue, o));
  }

  /**
   * Withdraw a job still waiting for its host (a halted or aborted rollout):
   * it ends `interrupted` with `reason` and never runs. False when it is no
   * longer waiting (it was dispatched meanwhile, or is not this host's pending job).
   */
  cancelQueued(host: string, jobId: string, reason: string): Promise<boolean> {
    return this.queue.run(host, async () => {
      if (this.pending.get(host) !== jobId) return false;
      this.pending.delete(host);
      const rec = this.deps.store.get(jobId);
      if (rec && !FINAL_STATES.has(rec.state)) await this.finish(rec, { outcome: 'interrupted', reason });
      return true;
    });
  }

  /** READY: this hub's claim on the host (hub/holders); the host's messages wait behind it, in order. */
  onHello(session: AgentLink, hello: Hello, ready?: Promise<unknown>): Promise<void> {
    return this.queue.run(session.name, async () => {
      if (ready) await ready.catch((err: Error) => this.deps.log.warn({ host: session.name, err: err.message }, 'claiming the host failed; handling its hello anyway (job records are written once the claim lands)'));
      await this.helloNow(session, hello);
    });
  }

  /** Another hub holds HOST now: forget what this scheduler kept for it, writing nothing (the new holder settles its jobs). */
  handOver(host: string): Promise<void> {
    return this.queue.run(host, async () => {
      this.active.delete(host);
      this.pending.delete(host);
      this.guarded.forget(host);
    });
  }

  /** HOST is connected here and another hub queued a job for it that this hub had not seen (late-queued.ts). */
  queuedLate(host: string): Promise<void> {
    return this.queue.run(host, async () => {
      const session = this.deps.sessions.get(host);
      const id = session && !this.pending.has(host) ? this.pendingOf(host, true) : undefined;
      if (!session || !id) return;
      this.pending.set(host, id);
      await this.dispatchPending(session);
    });
  }

  private heldElsewhere(host: string): boolean {
    const h = this.deps.holders.holder(host);
    return h !== null && !h.local;
  }

  onMessage(session: AgentLink, msg: AgentMessage): Promise<void> {
    return this.queue.run(session.name, () => this.messageNow(session, msg));
  }

  onDisconnect(host: string): Promise<void> {
    return this.queue.run(host, () => this.disconnectNow(host));
  }

  private async triggerNow(host: string, action: Action, queue: boolean, o: TriggerOptions): Promise<TriggerResult> {
    const { store, sessions } = this.deps;
    const { prebuilt } = o;
    // Another hub holds the host, or this one cannot tell (NATS away): say so before anything is sent.
    store.assertWritable(host);
    const named = o.jobId ? store.get(o.jobId) : undefined;
    if (named) {
      if (named.host !== host) throw new BentoError('STATE_CONFLICT', `job ${named.id} is a job of ${named.host}, not of ${host}`);
      return { host, jobId: named.id, disposition: 'coalesced', action: named.action };
    }
    const session = sessions.get(host);
    const pendingId = this.pendingOf(host, session === undefined);
    if (pendingId) {
      const rec = store.get(pendingId)!;
      if (rec.action !== action || rec.storePath !== prebuilt?.storePath) await store.save(withPrebuilt({ ...rec, action }, prebuilt));
      return { host, jobId: pendingId, disposition: 'coalesced', action };
    }
    if (!session && !queue) throw new BentoError('HOST_OFFLINE', `host "${host}" is not connected (use --queue to run when it connects)`);
    // Queued for a host nobody holds: the id every hub gives it (one pending job per host, cluster-wide).
    const rec = withPrebuilt(newJob(host, action, (session ? null : this.deps.holders.queuedJobId(host)) ?? o.jobId ?? null), prebuilt);
    if (session && !this.active.has(host)) {
      this.dispatch(session, rec);
      return { host, jobId: rec.id, disposition: 'dispatched', action };
    }
    try {
      await store.save(rec);
    } catch (err) {
      store.discard(rec.id); // the admin is told it failed: it must not run later
      throw err;
    }
    this.pending.set(host, rec.id);
    return { host, jobId: rec.id, disposition: 'queued', action };
  }

  /** The host's pending job, if it is still queued; for a host nobody holds, one another hub queued counts too. */
  private pendingOf(host: string, offline: boolean): string | undefined {
    const id = this.pending.get(host);
    if (id && this.deps.store.get(id)?.state === 'queued') return id;
    if (id) this.pending.delete(host); // dispatched by the hub the host went to meanwhile
    if (!offline) return undefined;
    const queued = this.deps.store.openFor(host).filter((r) => r.state === 'queued').pop();
    return queued?.id;
  }

  private dispatch(session: AgentLink, rec: JobRecord): void {
    this.active.set(rec.host, rec.id);
    if (this.pending.get(rec.host) === rec.id) this.pending.delete(rec.host);
    this.background(this.deps.store.save({ ...rec, state: 'dispatched', ...runningNow(session) }), rec.id);
    session.send({ type: 'job.start', jobId: rec.id, action: rec.action, ...prebuiltFields(rec) });
  }

  /** A record write nobody waits for (the agent holds the job meanwhile): failures are logged. */
  private background(write: Promise<void>, jobId: string): void {
    write.catch((err: Error) => this.deps.log.error({ jobId, err: err.message }, 'job record write failed; the agent still holds the job and will report it'));
  }

  private async helloNow(session: AgentLink, hello: Hello): Promise<void> {
    const host = session.name;
    const unreported = new Set(hello.unreported ?? []);
    await this.settleInFlight(host, hello, `${RESTARTED}; the agent reconnected without it (it was lost or never received)`);
    await this.takeOver(host, hello);
    this.guarded.hello(host, hello.runningJobId);
    const activeId = this.active.get(host);
    if (hello.runningJobId) {
      const rec = this.deps.store.get(hello.runningJobId);
      if (rec && rec.host === host) {
        this.active.set(host, rec.id);
        // Written by another hub (the host moved here mid-job): its output continues where the stored lines end.
        if (this.foreign(rec)) await this.deps.store.resumeOutput(rec.id).catch((err: Error) => this.deps.log.warn({ host, jobId: rec.id, err: err.message }, 'cannot read where the job\'s output stands; its first lines here are renumbered'));
        // Written again even when it says running: the record now carries this hub's claim (the fence).
        if (rec.state !== 'running' || this.foreign(rec)) await this.deps.store.save({ ...rec, state: 'running', endedAt: null, reason: null });
      }
    }
    if (activeId && activeId !== hello.runningJobId && !unreported.has(activeId)) {
      const rec = this.deps.store.get(activeId);
      if (rec && !FINAL_STATES.has(rec.state)) await this.finish(rec, { outcome: 'interrupted', reason: 'agent reconnected without this job (it was lost or never received)' });
      this.active.delete(host);
    }
    await this.dispatchPending(session);
  }

  /** Stamped by another hub (or another claim of this one): not this claim's record yet. */
  private foreign(rec: JobRecord): boolean {
    return rec.hub !== undefined && rec.hub !== this.deps.holders.hubName;
  }

  /**
   * The host came to this hub: the jobs other hubs left open for it are
   * settled here as after a restart (recovery.ts), against its hello. A
   * queued one becomes this hub's pending job; one whose result the agent is
   * about to replay is re-stamped, so the hub it left can no longer write it.
   */
  private async takeOver(host: string, hello: Hello): Promise<void> {
    const { store } = this.deps;
    for (const rec of store.openFor(host)) {
      if (rec.id === this.active.get(host) || rec.id === this.pending.get(host) || this.inFlight.has(host, rec.id)) continue;
      if (rec.state === 'queued') {
        if (!this.pending.has(host)) this.pending.set(host, rec.id);
        continue;
      }
      this.moved.add(host, rec.id);
      if (rec.id !== hello.runningJobId && (hello.unreported ?? []).includes(rec.id) && this.foreign(rec)) {
        await store.save({ ...rec }).catch((err: Error) => this.deps.log.warn({ host, jobId: rec.id, err: err.message }, 'cannot re-stamp a job whose result is on its way'));
      }
    }
    await this.settleInFlight(host, hello, 'the agent reconnected without it (it was lost or never received)', this.moved);
  }

  private async dispatchPending(session: AgentLink): Promise<void> {
    const host = session.name;
    const next = this.pendingOf(host, false);
    if (!next || this.active.has(host) || session.closed) return;
    const rec = this.deps.store.get(next);
    if (!rec) return;
    // Queued while the host was offline: the agent it came back with may not understand storePath.
    const unsupported = rec.storePath ? prebuiltUnsupported(host, session.hello?.capabilities ?? []) : null;
    if (unsupported) {
      this.pending.delete(host);
      await this.finish(rec, { outcome: 'failure', reason: `not run: ${unsupported.message} [${unsupported.code}]` });
      return;
    }
    this.dispatch(session, rec);
  }

  private async messageNow(session: AgentLink, msg: AgentMessage): Promise<void> {
    const { store, bus } = this.deps;
    const host = session.name;
    if (msg.type === 'job.started') {
      const rec = store.get(msg.jobId) ?? await this.adopter.adopt(host, msg.jobId, msg.action, null, true);
      if (!rec || rec.host !== host) return;
      // Not waited for: "running" is the agent's word, and it re-says it at every hello.
      // A job the host started itself was not dispatched: what it ran before is what it runs now.
      const before = rec.systemBefore === undefined ? runningNow(session) : {};
      this.background(store.save({ ...rec, ...before, state: 'running', startedAt: new Date().toISOString() }), rec.id);
      bus.publish({ kind: 'job', host, event: { ev: 'started', host, jobId: rec.id } });
    } else if (msg.type === 'job.output') {
      const rec = store.get(msg.jobId);
      // Only a running job takes output: a finished one's log is closed (and counted toward its host's total).
      if (!rec || rec.host !== host || FINAL_STATES.has(rec.state)) return;
      const { seq, ts } = store.appendOutput(rec.id, msg.stream, msg.data);
      bus.publish({ kind: 'job', host, event: { ev: 'output', host, jobId: rec.id, seq, ts, stream: msg.stream, data: msg.data } });
    } else if (msg.type === 'job.end') {
      await this.onJobEnd(session, msg);
    } else if (msg.type === 'job.guarded') {
      // A rollback-guarded switch: the connection may drop on purpose or
      // because of the switch; the agent's verdict follows when it is back.
      if (this.active.get(host) === msg.jobId) this.guarded.arm(host, msg.jobId, msg.withinMs);
    }
  }

  private async onJobEnd(session: AgentLink, msg: JobEnd): Promise<void> {
    this.guarded.ended(session.name, msg.jobId);
    const known = this.deps.store.get(msg.jobId);
    if (known && known.host !== session.name) {
      // Another host's job (two agents that shared a state directory replay
      // each other's results). No ack: an ack makes the agent delete the only
      // copy, and the owner's agent may still have to report it.
      this.deps.log.warn({ host: session.name, jobId: msg.jobId, owner: known.host },
        `refused a result from "${session.name}" for a job of "${known.host}"; not acknowledging it`);
      return;
    }
    // Recorded already with this outcome (a replay after the ack was lost, or the result reached another
    // hub first): acknowledge, and count it once. Durably recorded: this hub's own write of it may still be
    // in flight or unacknowledged by the store, and then the ack waits for it (the path below).
    const stored = this.deps.store.durable(msg.jobId);
    if (stored && stored.state === msg.outcome && stored.exitCode === msg.exitCode && stored.reason === (msg.reason ?? null) && stored.endedAt !== null) {
      session.send({ type: 'job.ack', jobId: msg.jobId });
      if (this.active.get(session.name) === msg.jobId) this.active.delete(session.name);
      this.moved.settled(session.name, msg.jobId);
      this.inFlight.settled(session.name, msg.jobId);
      await this.dispatchPending(session);
      return;
    }
    const rec = known ?? await this.adopter.adopt(session.name, msg.jobId, msg.action, msg.startedAt, false);
    // Refused by the adoption limits (logged there): no ack, the agent keeps its copy and replays it later.
    if (!rec) return;
    if (rec.host === session.name) {
      const done = finalRecord(rec, msg);
      try {
        await this.finishWith(done);
      } catch (err) {
        // Not durable (disk full, NATS away): no ack, so the agent keeps its copy; ack once it is.
        this.deps.log.error({ host: session.name, jobId: msg.jobId, err: (err as Error).message }, 'cannot record the job result; acknowledging it once the hub can write again');
        ackWhenDurable({ store: this.deps.store, session, record: done });
        if (this.active.get(session.name) === msg.jobId) this.active.delete(session.name);
        await this.dispatchPending(session);
        return;
      }
    } else {
      this.deps.log.warn({ host: session.name, jobId: msg.jobId }, 'result for an unknown job; acknowledging it so the agent can forget it');
    }
    // Acknowledge only after the record is durable: the agent deletes its copy on ack.
    session.send({ type: 'job.ack', jobId: msg.jobId });
    if (this.active.get(session.name) === msg.jobId) this.active.delete(session.name);
    await this.dispatchPending(session);
  }

  private async finish(rec: JobRecord, end: Pick<JobEnd, 'outcome'> & Partial<JobEnd>): Promise<void> {
    await this.finishWith(finalRecord(rec, end));
  }

  private async finishWith(done: JobRecord): Promise<void> {
    const rec = done;
    const durationMs = done.durationMs;
    const end = { outcome: done.state as Outcome };
    this.inFlight.settled(rec.host, rec.id);
    this.moved.settled(rec.host, rec.id);
    const durable = this.deps.store.save(done);
    // Told at once: until the record is durable the agent keeps its own copy
    // (no job.ack yet), and a hub decision (interrupted) is re-derived at start.
    this.deps.bus.publish({
      kind: 'job', host: rec.host, event: {
        ev: 'end', host: rec.host, jobId: rec.id, outcome: end.outcome, exitCode: done.exitCode,
        durationMs: durationMs ?? 0, ...(done.reason ? { reason: done.reason } : {}),
      },
    });
    await durable;
  }

  /** The agent of a guarded job did not come back in time. */
  private async guardExpired(host: string, id: string): Promise<void> {
    if (!this.guarded.expired(host, id)) return;
    if (this.deps.sessions.get(host) || this.active.get(host) !== id) return;
    this.active.delete(host);
    const rec = this.deps.store.get(id);
    if (rec && !FINAL_STATES.has(rec.state)) {
      await this.finish(rec, {
        outcome: 'interrupted',
        reason: 'connection to the agent was lost during a rollback-guarded job and it has not come back; unless it reaches the hub it rolls back on its own, and reports its verdict when it reconnects',
      });
    }
  }

  /** The agent's connection is gone for good (no newer session took over). */
  private async disconnectNow(host: string): Promise<void> {
    // The host went to another hub (this session was replaced from there): its jobs are that hub's now.
    if (this.heldElsewhere(host)) {
      this.active.delete(host);
      this.pending.delete(host);
      return;
    }
    // Left without replaying a result from before the hub started, after the grace: not coming back in time.
    if (this.inFlight.graceOver) await this.settleInFlight(host, null, 'hub restarted during the job, and the agent left again without reporting it');
    await this.settleInFlight(host, null, 'the agent reconnected, then left again without reporting it', this.moved);
    const id = this.active.get(host);
    if (!id) return;
    // Guarded: the verdict (kept or rolled back) comes with the agent's next connection.
    if (this.guarded.wait(host, id, () => { void this.queue.run(host, () => this.guardExpired(host, id)); })) return;
    this.active.delete(host);
    const rec = this.deps.store.get(id);
    if (rec && !FINAL_STATES.has(rec.state)) {
      await this.finish(rec, { outcome: 'interrupted', reason: 'connection to the agent was lost during the job' });
    }
  }
}

const RESTARTED = 'hub restarted during the job';

/** REC finished with END (the agent's result, or the hub's verdict). */
function finalRecord(rec: JobRecord, end: Pick<JobEnd, 'outcome'> & Partial<JobEnd>): JobRecord {
  const endedAt = new Date().toISOString();
  const startedAt = end.startedAt ?? rec.startedAt;
  const durationMs = end.durationMs ?? (startedAt ? Date.now() - Date.parse(startedAt) : null);
  return {
    ...rec, state: end.outcome, endedAt, startedAt, durationMs, exitCode: end.exitCode ?? null, reason: end.reason ?? null,
    ...(end.system !== undefined ? { systemAfter: end.system } : {}),
    ...(end.generation !== undefined ? { generationAfter: end.generation } : {}),
    ...(end.health ? { health: end.health } : {}),
  };
}

/** What the host runs now, as its hello says (presence.ts keeps it current with every job.end). */
function runningNow(session: AgentLink): Pick<JobRecord, 'systemBefore' | 'generationBefore'> {
  return session.hello ? { systemBefore: session.hello.system, generationBefore: session.hello.generation } : {};
}

