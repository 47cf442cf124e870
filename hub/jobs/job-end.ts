// How a job ends: its final record written durably, the end told on the bus
// at once, and an agent's result acknowledged (job.ack) only once its record
// is on disk, since the agent deletes its own copy on ack. The hub's own
// verdicts (interrupted, a failure it decides) end a job the same way
// (finish). Part of the scheduler (scheduler.ts): it runs in the host's turn.
import type { JobEnd } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import type { JobRecord, JobStore } from '../store/jobs.js';
import type { EventBus } from '../events/types.js';
import type { AgentLink } from './agent-link.js';
import { adoptedRecord, type Adopter } from './adopt.js';
import { ackWhenDurable } from './durable-ack.js';
import { BentoError } from '../../common/protocol/errors.js';
import { endEvent } from './end-event.js';

/** An agent's job.end, or a verdict of the hub (only the outcome is required). */
export type Ending = Pick<JobEnd, 'outcome'> & Partial<JobEnd>;

export interface JobEndsDeps {
  store: JobStore;
  bus: EventBus;
  log: Logger;
  adopter: Pick<Adopter, 'adopt'>;
  /** The scheduler's active job per host: cleared when it ends. */
  active: Map<string, string>;
  /** A job of HOST is settled: the sets of jobs from before a restart or a move forget it (recovery.ts). */
  settled(host: string, jobId: string): void;
  /** HOST's pending job, if any, goes out now that its active one is done. */
  dispatchPending(session: AgentLink): Promise<void>;
  /** Run FN in HOST's turn, later (a result made durable after a retry). */
  later(host: string, fn: () => Promise<void>): void;
}

export class JobEnds {
  constructor(private readonly d: JobEndsDeps) {}

  /**
   * End REC, which this hub sees open, with the hub's own verdict
   * (interrupted, "not run"). Only over an open record: if the job has ended
   * meanwhile (its result reached the store first, maybe through another
   * hub, or this hub's view of the record was behind), the result stays.
   */
  finish(rec: JobRecord, end: Ending): Promise<void> {
    return this.finishWith(finalRecord(rec, end), true);
  }

  /** Write the final record DONE (VERDICT: only over an open record, finish()); resolves once it is durable. */
  async finishWith(done: JobRecord, verdict = false): Promise<void> {
    this.d.settled(done.host, done.id);
    const durable = this.d.store.save(done, { overOpenOnly: verdict });
    if (!verdict) {
      // An agent's result is told at once: until the record is durable the agent keeps its own copy (no job.ack yet).
      this.publishEnd(done);
      await durable;
      return;
    }
    // A hub's verdict is not written over a record that is final by then (fenced-write.ts): told only once it
    // stands (found by review: followers, `trigger --wait` and the metrics counted an "interrupted" job that
    // had succeeded). One NATS did not acknowledge in time is shown and retried, so it is told too.
    try {
      await durable;
    } catch (err) {
      if (err instanceof BentoError && err.code === 'STATE_WRITE_FAILED') this.publishEnd(done);
      throw err;
    }
    if (this.d.store.get(done.id)?.state === done.state) this.publishEnd(done);
  }

  private publishEnd(done: JobRecord): void {
    // With where its output ends (the store's summary, set by save()): a follower fills the lines the bus lost before the end.
    const output = this.d.store.get(done.id)?.output ?? done.output;
    this.d.bus.publish({ kind: 'job', host: done.host, event: endEvent(output ? { ...done, output } : done) });
  }

  /** An agent's job.end: record it, then acknowledge it (or not, see each case). */
  async onJobEnd(session: AgentLink, msg: JobEnd): Promise<void> {
    const { store, log } = this.d;
    const host = session.name;
    const known = store.get(msg.jobId);
    if (known && known.host !== host) {
      // Another host's job (two agents that shared a state directory replay
      // each other's results). No ack: an ack makes the agent delete the only
      // copy, and the owner's agent may still have to report it.
      log.warn({ host, jobId: msg.jobId, owner: known.host }, `refused a result from "${host}" for a job of "${known.host}"; not acknowledging it`);
      return;
    }
    // Recorded already with this outcome (a replay after the ack was lost, or the result reached another
    // hub first): acknowledge, and count it once. Durably recorded: this hub's own write of it may still be
    // in flight or unacknowledged by the store, and then the ack waits for it (the path below). A replay
    // the view does not show recorded is looked up at the store too (the view may lag: recordedAtStore).
    if (recordedAs(store.durable(msg.jobId), msg) || (msg.replayed === true && await this.recordedAtStore(host, msg))) {
      session.send({ type: 'job.ack', jobId: msg.jobId });
      this.d.settled(host, msg.jobId);
      await this.over(session, msg.jobId);
      return;
    }
    let rec: JobRecord | undefined;
    try {
      rec = known ?? await this.d.adopter.adopt(host, msg.jobId, msg.action, msg.startedAt, false);
    } catch (err) {
      // Admitted, but its record cannot be written now (NATS away): as a known job's result below.
      await this.notDurable(session, finalRecord(adoptedRecord(host, msg.jobId, msg.action, msg.startedAt), msg), err as Error);
      return;
    }
    // Refused by the adoption limits (logged there): no ack, the agent keeps its copy and replays it later.
    if (!rec) return;
    if (rec.host === host) {
      const done = finalRecord(rec, msg);
      try {
        await this.finishWith(done);
      } catch (err) {
        await this.notDurable(session, done, err as Error);
        return;
      }
    } else {
      log.warn({ host, jobId: msg.jobId }, 'result for an unknown job; acknowledging it so the agent can forget it');
    }
    // Acknowledge only after the record is durable: the agent deletes its copy on ack.
    session.send({ type: 'job.ack', jobId: msg.jobId });
    await this.over(session, msg.jobId);
  }

  /**
   * A replay this hub's view does not show recorded: is it recorded at the
   * store itself (a cluster: the stream leader)? The view lags (a watch on
   * one replica): a result a hub recorded and died before acknowledging,
   * replayed here before the view caught up, was written again with a new
   * end time and its end counted at two hubs (bento_jobs_total). Only a
   * replay pays the read: a fresh result was never sent anywhere before.
   * Unanswered: written as before, since its record comes first and a
   * second count is the lesser harm.
   */
  private async recordedAtStore(host: string, msg: JobEnd): Promise<boolean> {
    try {
      const rec = await this.d.store.durableLatest(msg.jobId);
      return rec?.host === host && recordedAs(rec, msg);
    } catch (err) {
      this.d.log.warn({ host, jobId: msg.jobId, err: (err as Error).message }, 'cannot read the job record at the store; recording the replayed result (if another hub recorded it already, its end is counted twice)');
      return false;
    }
  }

  /**
   * An agent's result DONE is not durable (disk full, NATS away): no ack, so
   * the agent keeps its copy; it is written again every 2 s and acknowledged
   * once it is, and the host's next job goes out then (durable-ack.ts).
   */
  private async notDurable(session: AgentLink, done: JobRecord, err: Error): Promise<void> {
    const { store, log } = this.d;
    const host = session.name;
    log.error({ host, jobId: done.id, err: err.message }, 'cannot record the job result; acknowledging it once the hub can write again');
    const onDurable = (): void => this.d.later(host, () => this.over(session, done.id));
    ackWhenDurable({ store, session, record: done, log, onDurable });
    await this.over(session, done.id);
  }

  /** JOBID is over for the session's host: no longer its active job, and its next job goes out (not to a closed session: pending.ts). */
  private async over(session: AgentLink, jobId: string): Promise<void> {
    if (this.d.active.get(session.name) === jobId) this.d.active.delete(session.name);
    await this.d.dispatchPending(session);
  }
}

/** REC holds the agent's result MSG already: ended, with its outcome, exit code and reason. */
export function recordedAs(rec: JobRecord | undefined, msg: Pick<JobEnd, 'outcome' | 'exitCode' | 'reason'>): boolean {
  return rec !== undefined && rec.state === msg.outcome && rec.exitCode === msg.exitCode && rec.reason === (msg.reason ?? null) && rec.endedAt !== null;
}

/** REC finished with END (the agent's result, or the hub's verdict). */
export function finalRecord(rec: JobRecord, end: Ending): JobRecord {
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
