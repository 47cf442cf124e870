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
//
// This file: the per-host state, triggers, and the routing of agent
// messages. Finding and sending a host's pending job is in pending.ts; a
// job's end and its ack are in job-end.ts; what a host's hello and disconnect
// decide about its jobs is in arrivals.ts.
import type { Action, AgentMessage, Hello } from '../../common/protocol/messages.js';
import type { TriggerDisposition } from '../../common/protocol/admin.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { FINAL_STATES, type JobRecord, type JobStore } from '../store/jobs.js';
import type { EventBus } from '../events/types.js';
import type { AgentLink } from './agent-link.js';
import { withPrebuilt, type Prebuilt } from './prebuilt.js';
import { PerHostQueue } from './per-host-queue.js';
import { freeQueuedId, newJob } from './job-ids.js';
import { Adopter } from './adopt.js';
import type { AdoptionLimiter } from './adopt-limits.js';
import { InFlightAtStart, RECOVERY_GRACE_MS } from './recovery.js';
import { GuardWindows } from './guard-windows.js';
import { OrphanSweep } from './orphans.js';
import { JobEnds } from './job-end.js';
import { Arrivals } from './arrivals.js';
import { PendingJobs, runningNow, writeInBackground } from './pending.js';
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
  holders: Pick<HostHolders, 'hubName' | 'holder' | 'queuedJobId' | 'settlesOrphans' | 'hubAlive' | 'raiseClaim'>;
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
  private readonly ends: JobEnds;
  private readonly arrivals: Arrivals;
  private readonly pendingJobs: PendingJobs;

  constructor(private readonly deps: SchedulerDeps) {
    this.pendingJobs = new PendingJobs({
      store: deps.store, sessions: deps.sessions, log: deps.log, active: this.active, pending: this.pending,
      finish: (rec, end) => this.ends.finish(rec, end),
      raiseClaim: deps.holders.raiseClaim?.bind(deps.holders),
    });
    this.orphans = new OrphanSweep({
      store: deps.store, holders: deps.holders, sessions: deps.sessions, log: deps.log,
      activeJob: (host) => this.active.get(host),
      settle: (host, id, reason) => this.queue.run(host, async () => {
        const cur = deps.store.get(id);
        if (!cur || FINAL_STATES.has(cur.state) || deps.holders.holder(host) || deps.sessions.get(host) || this.active.get(host) === id) return;
        await this.ends.finish(cur, { outcome: 'interrupted', reason });
      }),
    });
    this.adopter = new Adopter({
      store: deps.store, log: deps.log, active: this.active, interrupt: (rec, reason) => this.ends.finish(rec, { outcome: 'interrupted', reason }),
      ...(deps.adoption ? { limiter: deps.adoption } : {}),
    });
    this.ends = new JobEnds({
      store: deps.store, bus: deps.bus, log: deps.log, adopter: this.adopter, active: this.active,
      settled: (host, id) => { this.inFlight.settled(host, id); this.moved.settled(host, id); },
      dispatchPending: (session) => this.pendingJobs.dispatchPending(session),
      later: (host, fn) => { void this.queue.run(host, fn); },
    });
    this.arrivals = new Arrivals({
      store: deps.store, holders: deps.holders, sessions: deps.sessions, log: deps.log,
      active: this.active, pending: this.pending, inFlight: this.inFlight, moved: this.moved, guarded: this.guarded,
      finish: (rec, end) => this.ends.finish(rec, end),
      dispatchPending: (session) => this.pendingJobs.dispatchPending(session),
      later: (host, fn) => { void this.queue.run(host, fn); },
    });
  }

  /** Rebuild in-memory state after a hub start; writes nothing (arrivals.ts recover). */
  async recover(opts: { graceMs?: number } = {}): Promise<void> {
    this.arrivals.recover(opts.graceMs ?? RECOVERY_GRACE_MS);
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
    this.arrivals.close();
    this.orphans.close();
    this.inFlight.close();
    this.guarded.close();
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
      if (rec && !FINAL_STATES.has(rec.state)) await this.ends.finish(rec, { outcome: 'interrupted', reason });
      return true;
    });
  }

  /** READY: this hub's claim on the host (hub/holders); the host's messages wait behind it, in order. */
  onHello(session: AgentLink, hello: Hello, ready?: Promise<unknown>): Promise<void> {
    return this.queue.run(session.name, async () => {
      if (ready) await ready.catch((err: Error) => this.deps.log.warn({ host: session.name, err: err.message }, 'claiming the host failed; handling its hello anyway (job records are written once the claim lands)'));
      await this.arrivals.hello(session, hello);
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

  /**
   * This hub can write job records again (holders' onCurrent: NATS was away,
   * or the hub was paused): redo the hellos that failed meanwhile, and send
   * each connected host the pending job that dispatchPending held back.
   */
  resumePending(): void {
    this.arrivals.retryFailed();
    for (const host of this.pendingJobs.hostsToResume()) {
      const session = this.deps.sessions.get(host);
      if (!session) continue;
      void this.queue.run(host, () => this.pendingJobs.dispatchPending(session)).catch((err: Error) => this.deps.log.error({ host, err: err.message }, 'cannot send a held-back job'));
    }
  }

  /** HOST is connected here and another hub queued a job for it that this hub had not seen (late-queued.ts). */
  queuedLate(host: string): Promise<void> {
    return this.queue.run(host, () => this.pendingJobs.queuedLate(host));
  }

  onMessage(session: AgentLink, msg: AgentMessage): Promise<void> {
    return this.queue.run(session.name, () => this.messageNow(session, msg));
  }

  onDisconnect(host: string): Promise<void> {
    return this.queue.run(host, () => this.arrivals.disconnect(host));
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
    const pendingId = this.pendingJobs.pendingOf(host, session === undefined);
    if (pendingId) {
      const rec = store.get(pendingId)!;
      if (rec.action !== action || rec.storePath !== prebuilt?.storePath) await store.save(withPrebuilt({ ...rec, action }, prebuilt));
      return { host, jobId: pendingId, disposition: 'coalesced', action };
    }
    if (!session && !queue) throw new BentoError('HOST_OFFLINE', `host "${host}" is not connected (use --queue to run when it connects)`);
    // Queued for a host nobody holds: the id every hub gives it (one pending job per host, cluster-wide).
    const shared = session ? null : this.deps.holders.queuedJobId(host);
    const queuedId = shared ? freeQueuedId(shared, (id) => store.get(id) !== undefined) : null;
    const rec = withPrebuilt(newJob(host, action, queuedId ?? o.jobId ?? null), prebuilt);
    if (session && !this.active.has(host)) {
      this.pendingJobs.dispatch(session, rec);
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

  private async messageNow(session: AgentLink, msg: AgentMessage): Promise<void> {
    const { store, bus } = this.deps;
    const host = session.name;
    if (msg.type === 'job.started') {
      const rec = store.get(msg.jobId) ?? await this.adopter.adopt(host, msg.jobId, msg.action, null, true);
      if (!rec || rec.host !== host) return;
      // Not waited for: "running" is the agent's word, and it re-says it at every hello.
      // A job the host started itself was not dispatched: what it ran before is what it runs now.
      const before = rec.systemBefore === undefined ? runningNow(session) : {};
      writeInBackground(this.deps.log, store.save({ ...rec, ...before, state: 'running', startedAt: new Date().toISOString() }, { eventually: true }), rec.id);
      bus.publish({ kind: 'job', host, event: { ev: 'started', host, jobId: rec.id } });
    } else if (msg.type === 'job.output') {
      const rec = store.get(msg.jobId);
      // Only a running job takes output: a finished one's log is closed (and counted toward its host's total).
      if (!rec || rec.host !== host || FINAL_STATES.has(rec.state)) return;
      const { seq, ts, w } = store.appendOutput(rec.id, msg.stream, msg.data);
      // w: whose numbering seq is in (a job moved mid-job has several writers: followers compare seqs per writer).
      bus.publish({ kind: 'job', host, event: { ev: 'output', host, jobId: rec.id, seq, ts, ...(w ? { w } : {}), stream: msg.stream, data: msg.data } });
    } else if (msg.type === 'job.end') {
      this.guarded.ended(host, msg.jobId);
      await this.ends.onJobEnd(session, msg);
    } else if (msg.type === 'job.guarded') {
      // A rollback-guarded switch: the connection may drop on purpose or
      // because of the switch; the agent's verdict follows when it is back.
      if (this.active.get(host) === msg.jobId) this.guarded.arm(host, msg.jobId, msg.withinMs);
    }
  }
}
