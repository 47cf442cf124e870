// A host's next job: the one waiting for it (queued while it was offline, or
// a follow-up behind its active job), found and sent to the host once the
// host and this hub can take it. Part of the scheduler (scheduler.ts): every
// call runs in the host's turn.
import type { Hello } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import type { JobRecord, JobStore } from '../store/jobs.js';
import type { AgentLink } from './agent-link.js';
import type { Ending } from './job-end.js';
import { prebuiltFields, prebuiltUnsupported } from './prebuilt.js';

export interface PendingJobsDeps {
  store: JobStore;
  sessions: { get(host: string): AgentLink | undefined };
  log: Logger;
  /** The scheduler's active and pending job per host. */
  active: Map<string, string>;
  pending: Map<string, string>;
  /** End a job that cannot run with the hub's verdict (job-end.ts finish). */
  finish(rec: JobRecord, end: Ending): Promise<void>;
  /** Where it applies (a cluster, holds.ts raiseClaim): raise this hub's claim on HOST above epoch ABOVE; false if it could not. */
  raiseClaim?: (host: string, above: number) => Promise<boolean>;
}

export class PendingJobs {
  constructor(private readonly d: PendingJobsDeps) {}

  /**
   * The host's pending job, if it is still queued. With INSTORE, a queued
   * record of the host this scheduler did not make pending counts too (and
   * becomes its pending job): one another hub queued while the host was
   * offline or between hubs, whatever path its record took into this view.
   * A trigger for a connected host does not look (it dispatches a job of its
   * own); every dispatch of pending work does, so a missed hand-over (a stale
   * pending id at the hello, a hello the fence refused halfway, a record that
   * arrived before the session) cannot leave a job queued for an online host
   * (the soak found each).
   */
  pendingOf(host: string, inStore: boolean): string | undefined {
    const session = this.d.sessions.get(host);
    const id = this.d.pending.get(host);
    if (id && this.d.store.get(id)?.state === 'queued' && !heldByAgent(session?.hello, id)) return id;
    if (id) this.d.pending.delete(host); // dispatched by the hub the host went to meanwhile, or the agent holds it
    if (!inStore) return undefined;
    const queued = this.d.store.openFor(host).find((r) => r.state === 'queued' && !heldByAgent(session?.hello, r.id));
    if (queued && session) this.d.pending.set(host, queued.id);
    return queued?.id;
  }

  /** Send REC to the host: it becomes the host's active job. */
  dispatch(session: AgentLink, rec: JobRecord): void {
    this.d.active.set(rec.host, rec.id);
    if (this.d.pending.get(rec.host) === rec.id) this.d.pending.delete(rec.host);
    // Eventually: the agent holds the job from job.start on, so this record needs no commit of its own (types.ts).
    writeInBackground(this.d.log, this.d.store.save({ ...rec, state: 'dispatched', ...runningNow(session) }, { eventually: true }), rec.id);
    session.send({ type: 'job.start', jobId: rec.id, action: rec.action, ...prebuiltFields(rec) });
  }

  /** The host's pending job, if any, goes out now, unless it has an active one or this hub cannot record it. */
  async dispatchPending(session: AgentLink, raised = false): Promise<void> {
    const host = session.name;
    const next = this.pendingOf(host, true);
    if (!next || this.d.active.has(host) || session.closed) return;
    const rec = this.d.store.get(next);
    if (!rec) return;
    // Not while this hub cannot write the host's records (NATS away, or it was
    // paused): the agent would run a job whose "dispatched" record the fence
    // refuses, the view would show it queued again, and a later dispatch of
    // it ran it twice (the soak). It stays pending; resumePending sends it.
    try {
      this.d.store.assertWritableOver(rec);
    } catch (err) {
      // Queued under a claim newer than the one this hub holds the host by: the holds bucket lost that
      // claim (nats-server 2.9.10) while the queueing hub still saw it. Nothing else would ever change
      // the epochs (the soak: the job waited two minutes, until the host moved), so this hub raises its
      // claim above the job's, once, and sends it.
      if (!raised && this.d.raiseClaim && this.d.store.claimBehind(rec) && await this.d.raiseClaim(host, rec.epoch!)) {
        await this.dispatchPending(session, true);
        return;
      }
      this.d.log.warn({ host, jobId: rec.id, err: (err as Error).message }, 'holding the host\'s next job until this hub can record it');
      return;
    }
    // Queued while the host was offline: the agent it came back with may not understand storePath.
    const unsupported = rec.storePath ? prebuiltUnsupported(host, session.hello?.capabilities ?? []) : null;
    if (unsupported) {
      this.d.pending.delete(host);
      await this.d.finish(rec, { outcome: 'failure', reason: `not run: ${unsupported.message} [${unsupported.code}]` });
      return;
    }
    this.dispatch(session, rec);
  }

  /**
   * Hosts that may have a job held back while this hub could not write
   * (resumePending): the pending ones, and hosts with a queued record this
   * scheduler never made pending (its hello failed while the hub could not
   * write): dispatchPending finds it.
   */
  hostsToResume(): Set<string> {
    return new Set([...this.d.pending.keys(), ...this.d.store.hostsWithOpenJobs()]);
  }

  /** HOST, if connected here, may have a queued job this hub had not seen (late-queued.ts). */
  async queuedLate(host: string): Promise<void> {
    const session = this.d.sessions.get(host);
    if (session) await this.dispatchPending(session); // finds the record in the store (pendingOf)
  }
}

/**
 * The agent's hello says it has job ID (running it, or holding its result): it
 * was sent already, whatever the record says. A record still "queued" is one
 * whose "dispatched" write (eventual, types.ts) died with the hub that sent it;
 * sending it again ran it twice (the soak, kill -9 of a hub under load). Its
 * result is on its way (job-end.ts records it).
 */
export function heldByAgent(hello: Pick<Hello, 'runningJobId' | 'unreported'> | null | undefined, id: string): boolean {
  return !!hello && (hello.runningJobId === id || (hello.unreported ?? []).includes(id));
}

/** A record write nobody waits for (the agent holds the job meanwhile): failures are logged. */
export function writeInBackground(log: Logger, write: Promise<void>, jobId: string): void {
  write.catch((err: Error) => log.error({ jobId, err: err.message }, 'job record write failed; the agent still holds the job and will report it'));
}

/** What the host runs now, as its hello says (presence.ts keeps it current with every job.end). */
export function runningNow(session: AgentLink): Pick<JobRecord, 'systemBefore' | 'generationBefore'> {
  return session.hello ? { systemBefore: session.hello.system, generationBefore: session.hello.generation } : {};
}
