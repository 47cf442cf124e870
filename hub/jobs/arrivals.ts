// A host comes and goes: what its hello and its disconnect decide about its
// jobs. At a hello, jobs the hub has open for the host (from before a hub
// restart, from another hub it came from, or the job it was running) are
// settled against what the agent says it runs and still has to report; at a
// disconnect, its running job is interrupted, unless a rollback-guarded
// switch may bring it back with a verdict. Part of the scheduler
// (scheduler.ts): every call runs in the host's turn.
import type { Hello } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import { FINAL_STATES, type JobRecord, type JobStore } from '../store/jobs.js';
import type { HostHolders } from '../holders/types.js';
import type { AgentLink } from './agent-link.js';
import type { InFlightAtStart } from './recovery.js';
import type { GuardWindows } from './guard-windows.js';
import type { Ending } from './job-end.js';
import { heldByAgent } from './pending.js';

export const RESTARTED = 'hub restarted during the job';

export interface ArrivalsDeps {
  store: JobStore;
  holders: Pick<HostHolders, 'hubName' | 'holder'>;
  sessions: { get(host: string): AgentLink | undefined };
  log: Logger;
  /** The scheduler's active and pending job per host. */
  active: Map<string, string>;
  pending: Map<string, string>;
  /** Jobs in flight when this hub started / that another hub left open for a host that moved here. */
  inFlight: InFlightAtStart;
  moved: InFlightAtStart;
  guarded: GuardWindows;
  finish(rec: JobRecord, end: Ending): Promise<void>;
  dispatchPending(session: AgentLink): Promise<void>;
  /** Run FN later in HOST's turn (the scheduler's per-host queue). */
  later(host: string, fn: () => Promise<void>): void;
}

/** How soon a hello that failed halfway is handled again (as long as its session lasts). */
export const FAILED_HELLO_RETRY_MS = 5000;

export class Arrivals {
  /**
   * Hellos that failed halfway, by host: a write the fence refused (the hub
   * lost touch with NATS, or was paused) left the rest undone, e.g. the job
   * the agent no longer runs still active, which blocks every later dispatch.
   * Redone once the hub is current again (retryFailed).
   */
  private readonly failed = new Map<string, { session: AgentLink; hello: Hello }>();
  /**
   * Also redone on a timer: a write can fail while the hub stays current (a
   * full disk on a single hub, a jobs-bucket write past its deadline), and
   * then no "current again" ever comes (found by review: the host's old job
   * stayed active and every later trigger queued behind it until the agent
   * reconnected).
   */
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly d: ArrivalsDeps) {}

  /** After a hub start (writes nothing): queued jobs are pending again, jobs in flight wait for their host's hello or GRACEMS (recovery.ts). */
  recover(graceMs: number): void {
    for (const j of this.d.store.all().sort((a, b) => a.requestedAt.localeCompare(b.requestedAt))) {
      if (j.state === 'queued') this.d.pending.set(j.host, j.id);
      else if (j.state === 'dispatched' || j.state === 'running') this.d.inFlight.add(j.host, j.id);
    }
    this.d.inFlight.startGrace(graceMs, (hosts) => {
      for (const host of hosts) {
        this.d.later(host, async () => {
          try {
            // "Has the host come back?" is "does any hub hold it?": another hub settles the jobs of hosts it holds.
            if (!this.d.sessions.get(host) && !this.heldElsewhere(host)) await this.settleInFlight(host, null, `${RESTARTED}; waiting for the agent to report`);
          } catch (err) {
            this.d.log.error({ host, err: (err as Error).message }, 'cannot record the jobs of a host that did not come back');
          }
        });
      }
    });
  }

  async hello(session: AgentLink, hello: Hello): Promise<void> {
    this.failed.delete(session.name);
    try {
      await this.helloNow(session, hello);
    } catch (err) {
      this.failed.set(session.name, { session, hello });
      this.retrySoon();
      throw err;
    }
  }

  /** Stop the failed hellos' retry timer (the hub stops). */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private retrySoon(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.failed.size > 0) this.retryFailed();
    }, FAILED_HELLO_RETRY_MS);
  }

  /**
   * The hub can write again: redo each failed hello whose session is still
   * the host's, in the host's turn. Its running job counts only while still
   * open (or active): a result recorded since must not be made running again.
   */
  retryFailed(): void {
    for (const [host, f] of [...this.failed]) {
      this.d.later(host, async () => {
        if (this.failed.get(host) !== f) return;
        if (f.session.closed || this.d.sessions.get(host) !== f.session) { this.failed.delete(host); return; }
        const id = f.hello.runningJobId;
        const rec = id ? this.d.store.get(id) : undefined;
        const open = !!id && (this.d.active.get(host) === id || (rec !== undefined && !FINAL_STATES.has(rec.state)));
        try {
          await this.hello(f.session, open ? f.hello : { ...f.hello, runningJobId: null });
          this.d.log.info({ host }, 'handled the host\'s hello again, now that this hub can write');
        } catch (err) {
          this.d.log.warn({ host, err: (err as Error).message }, 'the host\'s hello failed again; retried in a few seconds, and once this hub can write');
        }
      });
    }
  }

  private async helloNow(session: AgentLink, hello: Hello): Promise<void> {
    const { store, active, log } = this.d;
    const host = session.name;
    const unreported = new Set(hello.unreported ?? []);
    await this.settleInFlight(host, hello, `${RESTARTED}; the agent reconnected without it (it was lost or never received)`);
    await this.takeOver(host, hello);
    this.d.guarded.hello(host, hello.runningJobId);
    const activeId = active.get(host);
    if (hello.runningJobId) {
      const rec = store.get(hello.runningJobId);
      // Rare (the hub that sent it died before writing its record): say so; its job.end is adopted
      // (adopt.ts). The host is busy all the same: its next job waits for that end here, instead of
      // going to an agent that runs something else (it would only hold it as its follow-up).
      if (!rec) {
        log.warn({ host, jobId: hello.runningJobId }, 'the agent runs a job this hub has no record of');
        active.set(host, hello.runningJobId);
      } else if (this.foreign(rec)) log.info({ host, jobId: rec.id, state: rec.state, from: rec.hub, epoch: rec.epoch }, 'taking over the job the agent still runs');
      if (rec && rec.host === host) {
        active.set(host, rec.id);
        // Written by another hub (the host moved here mid-job): its output continues where the stored lines end.
        if (this.foreign(rec)) await store.resumeOutput(rec.id).catch((err: Error) => log.warn({ host, jobId: rec.id, err: err.message }, 'cannot read where the job\'s output stands; its first lines here are renumbered'));
        // Written again even when it says running: the record now carries this hub's claim (the fence).
        if (rec.state !== 'running' || this.foreign(rec)) await store.save({ ...rec, state: 'running', endedAt: null, reason: null });
      }
    }
    if (activeId && activeId !== hello.runningJobId && !unreported.has(activeId)) {
      const rec = store.get(activeId);
      if (rec && !FINAL_STATES.has(rec.state)) await this.d.finish(rec, { outcome: 'interrupted', reason: 'agent reconnected without this job (it was lost or never received)' });
      active.delete(host);
    }
    await this.d.dispatchPending(session);
  }

  /** The agent's connection is gone for good (no newer session took over). */
  async disconnect(host: string): Promise<void> {
    const { active, pending, store } = this.d;
    this.failed.delete(host);
    // The host went to another hub (this session was replaced from there): its jobs are that hub's now.
    if (this.heldElsewhere(host)) {
      active.delete(host);
      pending.delete(host);
      return;
    }
    // Left without replaying a result from before the hub started, after the grace: not coming back in time.
    if (this.d.inFlight.graceOver) await this.settleInFlight(host, null, 'hub restarted during the job, and the agent left again without reporting it');
    await this.settleInFlight(host, null, 'the agent reconnected, then left again without reporting it', this.d.moved);
    const id = active.get(host);
    if (!id) return;
    // Guarded: the verdict (kept or rolled back) comes with the agent's next connection.
    if (this.d.guarded.wait(host, id, () => this.d.later(host, () => this.guardExpired(host, id)))) return;
    active.delete(host);
    const rec = store.get(id);
    if (rec && !FINAL_STATES.has(rec.state)) {
      await this.d.finish(rec, { outcome: 'interrupted', reason: 'connection to the agent was lost during the job' });
    }
  }

  /** Interrupt a host's jobs from before the hub started that its hello (null: it is gone) does not claim (recovery.ts). */
  async settleInFlight(host: string, hello: Hello | null, reason: string, set = this.d.inFlight): Promise<void> {
    for (const id of set.unclaimed(host, hello)) {
      const rec = this.d.store.get(id);
      if (rec && !FINAL_STATES.has(rec.state)) await this.d.finish(rec, { outcome: 'interrupted', reason });
    }
  }

  heldElsewhere(host: string): boolean {
    const h = this.d.holders.holder(host);
    return h !== null && !h.local;
  }

  /** Stamped by another hub (or another claim of this one): not this claim's record yet. */
  private foreign(rec: JobRecord): boolean {
    return rec.hub !== undefined && rec.hub !== this.d.holders.hubName;
  }

  /**
   * The host came to this hub: the jobs other hubs left open for it are
   * settled here as after a restart (recovery.ts), against its hello. A
   * queued one becomes this hub's pending job; one whose result the agent is
   * about to replay is re-stamped, so the hub it left can no longer write it.
   */
  private async takeOver(host: string, hello: Hello): Promise<void> {
    const { store, active, pending } = this.d;
    for (const rec of store.openFor(host)) {
      if (rec.id === active.get(host) || rec.id === pending.get(host) || this.d.inFlight.has(host, rec.id)) continue;
      // Queued, unless the agent has it (its dispatched record was lost): then it is in flight (pending.ts heldByAgent).
      if (rec.state === 'queued' && !heldByAgent(hello, rec.id)) {
        if (!pending.has(host)) pending.set(host, rec.id);
        continue;
      }
      this.d.moved.add(host, rec.id);
      if (rec.id !== hello.runningJobId && (hello.unreported ?? []).includes(rec.id) && this.foreign(rec)) {
        await store.save({ ...rec }).catch((err: Error) => this.d.log.warn({ host, jobId: rec.id, err: err.message }, 'cannot re-stamp a job whose result is on its way'));
      }
    }
    await this.settleInFlight(host, hello, 'the agent reconnected without it (it was lost or never received)', this.d.moved);
  }

  /** The agent of a guarded job did not come back in time. */
  private async guardExpired(host: string, id: string): Promise<void> {
    if (!this.d.guarded.expired(host, id)) return;
    if (this.d.sessions.get(host) || this.d.active.get(host) !== id) return;
    this.d.active.delete(host);
    const rec = this.d.store.get(id);
    if (rec && !FINAL_STATES.has(rec.state)) {
      await this.d.finish(rec, {
        outcome: 'interrupted',
        reason: 'connection to the agent was lost during a rollback-guarded job and it has not come back; unless it reaches the hub it rolls back on its own, and reports its verdict when it reconnects',
      });
    }
  }
}
