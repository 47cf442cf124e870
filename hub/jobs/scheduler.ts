// Jobs per host: at most one active (dispatched or running) and at most one
// pending (a follow-up, or a --queue job for an offline host). Triggers that
// arrive while one is pending coalesce into it.
//
// Durability: a queued job, a job's end (before job.ack) and every recovery
// decision are on disk before anyone hears of them. A job sent straight to a
// connected agent is not waited for: the agent keeps it on its own disk from
// job.start to job.ack, so if the hub dies before the record is written, the
// agent's replayed result re-creates it (adopt). That keeps an fsync off the
// trigger-to-start path (docs/performance.md).
import type { Action, AgentMessage, Hello, JobEnd } from '../../common/protocol/messages.js';
import type { TriggerDisposition } from '../../common/protocol/admin.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { FINAL_STATES, type JobRecord, type JobStore } from '../store/jobs.js';
import type { EventBus } from '../events/types.js';
import type { AgentLink } from './agent-link.js';
import { prebuiltFields, prebuiltUnsupported, withPrebuilt, type Prebuilt } from './prebuilt.js';
import { PerHostQueue } from './per-host-queue.js';
import { ackWhenDurable } from './durable-ack.js';
import { AGENT_JOB_ID, newJob } from './job-ids.js';

export interface TriggerResult { host: string; jobId: string; disposition: TriggerDisposition; action: Action }

export interface SchedulerDeps {
  store: JobStore;
  /** The live connection of a host, if any (server/sessions.ts). */
  sessions: { get(host: string): AgentLink | undefined };
  /** Job events (started, output, end) go here. */
  bus: EventBus;
  log: Logger;
}

export class Scheduler {
  private readonly active = new Map<string, string>();
  private readonly pending = new Map<string, string>();
  /** Per-host serialisation: admin triggers and agent messages for one host never interleave. */
  private readonly queue = new PerHostQueue();
  /** The last agent-initiated job per host (adoptLocalJob). */
  private readonly localJobs = new Map<string, string>();
  /** Guarded jobs (rollback guard, job.guarded): how long to wait for the agent after a disconnect. */
  private readonly guarded = new Map<string, { jobId: string; windowMs: number; timer: NodeJS.Timeout | null }>();

  constructor(private readonly deps: SchedulerDeps) {}

  /** Rebuild in-memory state after a hub start. */
  async recover(): Promise<void> {
    for (const j of this.deps.store.all().sort((a, b) => a.requestedAt.localeCompare(b.requestedAt))) {
      if (j.state === 'queued') {
        this.pending.set(j.host, j.id);
      } else if (j.state === 'dispatched' || j.state === 'running') {
        // The agent may still be running it; its hello (runningJobId) or its
        // replayed job.end will correct this.
        await this.finish(j, { outcome: 'interrupted', reason: 'hub restarted during the job; waiting for the agent to report' });
      }
    }
  }

  activeJob(host: string): JobRecord | undefined {
    const id = this.active.get(host);
    return id ? this.deps.store.get(id) : undefined;
  }

  /** `prebuilt`: switch to this store path instead of rebuilding on the host (hub/jobs/prebuilt.ts). */
  trigger(host: string, action: Action, queue: boolean, prebuilt?: Prebuilt): Promise<TriggerResult> {
    return this.queue.run(host, () => this.triggerNow(host, action, queue, prebuilt));
  }

  onHello(session: AgentLink, hello: Hello): Promise<void> {
    return this.queue.run(session.name, () => this.helloNow(session, hello));
  }

  onMessage(session: AgentLink, msg: AgentMessage): Promise<void> {
    return this.queue.run(session.name, () => this.messageNow(session, msg));
  }

  onDisconnect(host: string): Promise<void> {
    return this.queue.run(host, () => this.disconnectNow(host));
  }

  private async triggerNow(host: string, action: Action, queue: boolean, prebuilt?: Prebuilt): Promise<TriggerResult> {
    const { store, sessions } = this.deps;
    const session = sessions.get(host);
    const pendingId = this.pending.get(host);
    if (pendingId) {
      const rec = store.get(pendingId)!;
      if (rec.action !== action || rec.storePath !== prebuilt?.storePath) await store.save(withPrebuilt({ ...rec, action }, prebuilt));
      return { host, jobId: pendingId, disposition: 'coalesced', action };
    }
    if (!session && !queue) throw new BentoError('HOST_OFFLINE', `host "${host}" is not connected (use --queue to run when it connects)`);
    const rec = withPrebuilt(newJob(host, action), prebuilt);
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

  private dispatch(session: AgentLink, rec: JobRecord): void {
    this.active.set(rec.host, rec.id);
    if (this.pending.get(rec.host) === rec.id) this.pending.delete(rec.host);
    this.background(this.deps.store.save({ ...rec, state: 'dispatched' }), rec.id);
    session.send({ type: 'job.start', jobId: rec.id, action: rec.action, ...prebuiltFields(rec) });
  }

  /** A record write nobody waits for (the agent holds the job meanwhile): failures are logged. */
  private background(write: Promise<void>, jobId: string): void {
    write.catch((err: Error) => this.deps.log.error({ jobId, err: err.message }, 'job record write failed; the agent still holds the job and will report it'));
  }

  private async helloNow(session: AgentLink, hello: Hello): Promise<void> {
    const host = session.name;
    const unreported = new Set(hello.unreported ?? []);
    const guard = this.guarded.get(host);
    if (guard) {
      if (guard.timer) clearTimeout(guard.timer);
      guard.timer = null;
      if (guard.jobId !== hello.runningJobId) this.guarded.delete(host);
    }
    const activeId = this.active.get(host);
    if (hello.runningJobId) {
      const rec = this.deps.store.get(hello.runningJobId);
      if (rec && rec.host === host) {
        this.active.set(host, rec.id);
        if (rec.state !== 'running') await this.deps.store.save({ ...rec, state: 'running', endedAt: null, reason: null });
      }
    }
    if (activeId && activeId !== hello.runningJobId && !unreported.has(activeId)) {
      const rec = this.deps.store.get(activeId);
      if (rec && !FINAL_STATES.has(rec.state)) await this.finish(rec, { outcome: 'interrupted', reason: 'agent reconnected without this job (it was lost or never received)' });
      this.active.delete(host);
    }
    await this.dispatchPending(session);
  }

  private async dispatchPending(session: AgentLink): Promise<void> {
    const host = session.name;
    const next = this.pending.get(host);
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
      const rec = store.get(msg.jobId) ?? await this.adopt(host, msg.jobId, msg.action, null);
      if (!rec || rec.host !== host) return;
      // Not waited for: "running" is the agent's word, and it re-says it at every hello.
      this.background(store.save({ ...rec, state: 'running', startedAt: new Date().toISOString() }), rec.id);
      bus.publish({ kind: 'job', host, event: { ev: 'started', host, jobId: rec.id } });
    } else if (msg.type === 'job.output') {
      const rec = store.get(msg.jobId);
      if (!rec || rec.host !== host) return;
      const seq = store.appendOutput(rec.id, msg.stream, msg.data);
      bus.publish({ kind: 'job', host, event: { ev: 'output', host, jobId: rec.id, seq, stream: msg.stream, data: msg.data } });
    } else if (msg.type === 'job.end') {
      await this.onJobEnd(session, msg);
    } else if (msg.type === 'job.guarded') {
      // A rollback-guarded switch: the connection may drop on purpose or
      // because of the switch; the agent's verdict follows when it is back.
      if (this.active.get(host) !== msg.jobId) return;
      this.guarded.set(host, { jobId: msg.jobId, windowMs: Math.min(msg.withinMs, 24 * 3600_000) + GUARD_GRACE_MS, timer: null });
    }
  }

  private async onJobEnd(session: AgentLink, msg: JobEnd): Promise<void> {
    const guard = this.guarded.get(session.name);
    if (guard?.jobId === msg.jobId) {
      if (guard.timer) clearTimeout(guard.timer);
      this.guarded.delete(session.name);
    }
    const rec = this.deps.store.get(msg.jobId) ?? await this.adopt(session.name, msg.jobId, msg.action, msg.startedAt);
    if (rec && rec.host === session.name) {
      try {
        await this.finish(rec, msg);
      } catch (err) {
        // Not on disk (disk full?): no ack, so the agent keeps its copy; ack once it is.
        this.deps.log.error({ host: session.name, jobId: msg.jobId, err: (err as Error).message }, 'cannot record the job result; acknowledging it once the hub can write again');
        ackWhenDurable({ store: this.deps.store, session, jobId: msg.jobId });
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

  /**
   * A job the hub has no record of, reported by the host that ran it: one the
   * agent started itself (adoptLocalJob), or one the hub sent just before it
   * died, before the record reached the disk. Either way the host's word is
   * recorded, so nothing it ran is missing from history.
   */
  private async adopt(host: string, jobId: string, action: Action, startedAt: string | null): Promise<JobRecord | undefined> {
    if (AGENT_JOB_ID.test(jobId)) return this.adoptLocalJob(host, jobId, action, startedAt);
    const rec: JobRecord = { ...newJob(host, action), id: jobId, state: 'dispatched', startedAt };
    await this.deps.store.save(rec);
    this.deps.log.warn({ host, jobId, action }, 'the agent reports a job the hub has no record of (hub restarted before writing it); recording it');
    return rec;
  }

  /**
   * A job the agent started on its own (AGENT_JOB_ID: its local page,
   * `bento-client upgrade`, a pull's autoApply): record it like a triggered
   * one, so history, status, dashboard and metrics show it. At most one such
   * open record per host.
   */
  private async adoptLocalJob(host: string, jobId: string, action: Action, startedAt: string | null): Promise<JobRecord | undefined> {
    if (!AGENT_JOB_ID.test(jobId)) return undefined;
    const prevId = this.localJobs.get(host);
    const prev = prevId ? this.deps.store.get(prevId) : undefined;
    if (prev && prev.host === host && !FINAL_STATES.has(prev.state)) {
      await this.finish(prev, { outcome: 'interrupted', reason: 'the agent started another job before reporting this one' });
      if (this.active.get(host) === prev.id) this.active.delete(host);
    }
    const rec: JobRecord = { ...newJob(host, action), id: jobId, state: 'dispatched', startedAt };
    await this.deps.store.save(rec);
    this.localJobs.set(host, jobId);
    if (!this.active.has(host)) this.active.set(host, jobId);
    this.deps.log.info({ host, jobId, action }, 'recording a job the agent started itself');
    return rec;
  }

  private async finish(rec: JobRecord, end: Pick<JobEnd, 'outcome'> & Partial<JobEnd>): Promise<void> {
    const endedAt = new Date().toISOString();
    const startedAt = end.startedAt ?? rec.startedAt;
    const durationMs = end.durationMs ?? (startedAt ? Date.now() - Date.parse(startedAt) : null);
    const done: JobRecord = {
      ...rec, state: end.outcome, endedAt, startedAt, durationMs,
      exitCode: end.exitCode ?? null, reason: end.reason ?? null,
    };
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
    if (this.guarded.get(host)?.jobId !== id) return;
    this.guarded.delete(host);
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
    const id = this.active.get(host);
    if (!id) return;
    const guard = this.guarded.get(host);
    if (guard?.jobId === id) {
      // The verdict (kept or rolled back) comes with the agent's next connection.
      if (guard.timer) clearTimeout(guard.timer);
      guard.timer = setTimeout(() => { void this.queue.run(host, () => this.guardExpired(host, id)); }, guard.windowMs);
      guard.timer.unref();
      return;
    }
    this.active.delete(host);
    const rec = this.deps.store.get(id);
    if (rec && !FINAL_STATES.has(rec.state)) {
      await this.finish(rec, { outcome: 'interrupted', reason: 'connection to the agent was lost during the job' });
    }
  }
}

/** Extra wait on top of the agent's announced window (the switch itself, reconnect backoff, handshake). */
const GUARD_GRACE_MS = 10_000;
