// Turns whose trigger landed late (docs/rollouts.md, "A trigger that lands
// late"): a job with a turn's id (records.ts turnJobId) that the rollout's
// record of its host does not name, because the driver forgot the turn while
// the trigger was still on its way (a takeover or an abort at another hub,
// an unconfirmed routed trigger), or because a resume changed the turn ids
// meanwhile. The job runs all the same, so the host's record must get it.
//
// Who writes it: the rollout's driver, as every other write of the rollout
// (adopt in steps.ts), under its epoch. Not the hub that records the job's
// start or end: that would make a second writer of the host's record beside
// the driver, under an epoch it does not hold, and the fence (store.ts) could
// no longer say whose write wins. So a finished rollout with a late turn
// needs a driver like one with hosts still running (takeover.ts): when its
// driver is gone, the successor takes it over by the usual compare-and-swap
// (epoch + 1) and adopts the turn. Every hub notes late turns from the job
// records it sees change (LateTurns below), so whichever hub is the successor
// when it matters knows them, without a scan of the job records per sweep.
import { FINAL_STATES, type JobRecord } from '../store/jobs.js';
import { waveOf } from './plan.js';
import { turnJobId, turnRound, type MemberRecord, type RolloutRecord } from './records.js';

/** Late turns a hub remembers at most (the oldest go first), and for how long. */
export const LATE_MAX = 1000;
export const LATE_TTL_MS = 60 * 60_000;

export type LateJob = Pick<JobRecord, 'id' | 'host' | 'state' | 'requestedAt' | 'startedAt'>;

/**
 * Is JOB a turn of R's host that R does not track, and that ran or may run?
 * M: R's record of the host. It tracks the turn unless it has no record (its
 * turn was forgotten, or R was aborted before it), or one that names no job
 * and says it never ran (skipped or cancelled after the turn was forgotten).
 * A job from an earlier round counts only when it was requested after the
 * last resume (R.resumed): a trigger sent before the resume that landed after
 * it. An earlier round's job requested before that is one R knew and let go
 * (a failed host retried by `resume --retry-failed`), not a late trigger.
 */
export function isLateTurn(r: RolloutRecord, m: MemberRecord | undefined, job: LateJob): boolean {
  if (m && (m.jobId !== null || (m.state !== 'skipped' && m.state !== 'cancelled'))) return false;
  // Withdrawn from the queue before it ran (a halt or an abort, or adopt itself): nothing ran.
  if (FINAL_STATES.has(job.state) && job.startedAt === null) return false;
  const round = turnRound(job.id, r.id);
  const current = r.round ?? 0;
  if (round === null || round > current || waveOf(r, job.host) === -1) return false;
  if (round < current) {
    const after = r.resumed?.round === current ? Date.parse(r.resumed.at) : NaN;
    if (!(Date.parse(job.requestedAt) >= after)) return false;
  }
  return turnJobId({ id: r.id, round }, job.host) === job.id;
}

interface Noted { id: string; host: string; at: number }
type Turn = { id: string; host: string };

export interface LateTurnsDeps {
  /** The rollout host whose turn JOB is and that its record does not name (store.ts lateTurn, isLateTurn above). */
  lateTurn(job: LateJob): Turn | undefined;
  /** The rollout host whose record names JOBID (store.ts turnOf). */
  turnOf(jobId: string): Turn | undefined;
  jobs: { get(id: string): JobRecord | undefined; all(): JobRecord[] };
}

/**
 * The late turns this hub saw (job id -> rollout and host), kept until the
 * rollout's record names the job, the job or the rollout is gone, or an hour
 * passed; at most LATE_MAX (the oldest go first). Every sweep reviews them:
 * one look-up per entry, never a scan of the job records (that is done once,
 * at start: noteAll).
 */
export class LateTurns {
  private readonly noted = new Map<string, Noted>();
  /** As of the last review: rollout id -> its late turns. */
  private now = new Map<string, Array<{ jobId: string; host: string }>>();

  constructor(private readonly d: LateTurnsDeps) {}

  /** At start: late turns whose job record appeared while this hub was down. */
  noteAll(): void {
    for (const rec of this.d.jobs.all()) this.seen(rec);
  }

  /** A job record changed: its turn, if it is a rollout's (tracked or late; a late one is noted). */
  seen(rec: JobRecord, now = Date.now()): Turn | undefined {
    const tracked = this.d.turnOf(rec.id);
    if (tracked) return tracked;
    const t = this.d.lateTurn(rec);
    if (t && !this.noted.has(rec.id)) {
      this.noted.set(rec.id, { ...t, at: now });
      while (this.noted.size > LATE_MAX) this.noted.delete(this.noted.keys().next().value!);
    }
    return t;
  }

  /** Drop what a driver adopted meanwhile, or whose job or rollout is gone, or that is older than LATE_TTL_MS. */
  review(now = Date.now()): void {
    this.now = new Map();
    for (const [jobId, t] of this.noted) {
      const rec = this.d.jobs.get(jobId);
      if (now - t.at > LATE_TTL_MS || !rec || this.d.lateTurn(rec)?.id !== t.id) {
        this.noted.delete(jobId);
        continue;
      }
      let list = this.now.get(t.id);
      if (!list) this.now.set(t.id, (list = []));
      list.push({ jobId, host: t.host });
    }
  }

  /** Rollout ID's late turns, as of the last review. */
  of(id: string): ReadonlyArray<{ jobId: string; host: string }> {
    return this.now.get(id) ?? [];
  }

  get size(): number {
    return this.noted.size;
  }
}
