// Following triggered jobs on the event bus, wherever they run. The
// subscription is made before any trigger is sent: a job dispatched by
// another hub (the host is held there) or moved to another hub mid-job still
// reaches this one through the shared bus, and what it says before the
// trigger's answer names its id is kept (per host, bounded) and replayed once
// it does. Output lines carry their place in the job's output (seq), as
// their writer numbers it (a job moved mid-job has more than one: seqs are
// compared per writer, follow-fill.ts): a repeat is dropped, and a gap
// (events are at most once across hubs) is filled from the stored output
// before the line that revealed it, or before the end when the end says the
// job printed more than was shown (follow-fill.ts waits for lines not stored
// yet). An end the bus lost is found in the job's record, checked every few
// seconds (this hub's view of the records is local: cheap), so a follower
// never waits forever.
import type { Logger } from '../../common/platform/log.js';
import type { EventBus, JobBusEvent, Subscription } from '../events/types.js';
import { END_CHECK_MS, endEvent, endForAdmin } from '../jobs/end-event.js';
import { FINAL_STATES, type JobStore } from '../store/jobs.js';
import { FILL_WAIT_MS, fillFromStore, gapBefore, markShown, writerOf, type FillPlace } from './follow-fill.js';
import type { Reply } from './server.js';
import { outputForAdmin } from './admin-output.js';

/** Events kept per host while its trigger is in flight (other jobs of the host included); past it, the oldest output lines go. */
const MAX_EARLY = 10_000;
/** A single host is followed on its own subject; several on the whole bus. */
const HOST_FILTER_MAX = 1;

/** A followed job: where its output stands (per writer), the events waiting behind a gap being filled, and whether its end came. */
interface Track extends FillPlace { chain: Promise<void> | null; waiting: number; ended: boolean }

export interface FollowDeps {
  bus: EventBus;
  /** Stored output (gaps); with `get`, the records too (an end the bus lost). */
  jobs: Pick<JobStore, 'readOutput'> & Partial<Pick<JobStore, 'get'>>;
  reply: Reply;
  log: Logger;
  /** Called once per followed job, after its end went out. */
  ended: (jobId: string) => void;
  /** How often open jobs' records are checked, ms (default 2000). */
  checkMs?: number;
  /** How long a gap waits for its lines to be stored, ms (default follow-fill.ts FILL_WAIT_MS). */
  fillWaitMs?: number;
}

export class JobFollower {
  /** Per host whose trigger is in flight, what its jobs said before the answer (null: nothing yet). */
  private readonly early = new Map<string, JobBusEvent[] | null>();
  private readonly tracks = new Map<string, Track>();
  private sub: Subscription | null = null;
  private check: NodeJS.Timeout | null = null;

  constructor(private readonly d: FollowDeps, private readonly hosts: ReadonlySet<string>) {}

  /** Subscribe (before any trigger is sent). */
  start(): void {
    const filter = this.hosts.size <= HOST_FILTER_MAX ? { host: [...this.hosts][0]! } : { all: true as const };
    this.sub = this.d.bus.subscribe(filter, (b) => {
      if (b.kind !== 'job' || !this.hosts.has(b.host)) return;
      const e = b.event;
      if (this.tracks.has(e.jobId)) {
        this.deliver(e);
      } else if (this.early.has(e.host)) {
        const kept = this.early.get(e.host);
        if (kept) keep(kept, e);
        else this.early.set(e.host, [e]);
      }
    });
    if (this.d.jobs.get) {
      this.check = setInterval(() => this.checkRecords(), this.d.checkMs ?? END_CHECK_MS);
      this.check.unref();
    }
  }

  /** HOST's trigger is in flight: keep what its jobs say until the answer. */
  expect(host: string): void {
    if (!this.early.has(host)) this.early.set(host, null);
  }

  /** The trigger of HOST was answered with JOBID: follow it from its first event. */
  follow(host: string, jobId: string): void {
    if (!this.tracks.has(jobId)) {
      this.tracks.set(jobId, { shown: new Map(), place: 0, chain: null, waiting: 0, ended: false });
      // Output lines dropped while kept (keep()) show as a gap here, filled from the store.
      for (const e of this.early.get(host) ?? []) if (e.jobId === jobId) this.deliver(e);
    }
    this.early.delete(host);
  }

  /** The trigger of HOST was answered without a job to follow. */
  skip(host: string): void {
    this.early.delete(host);
  }

  /** Events kept for HOST's trigger in flight (bounded by MAX_EARLY). */
  keptFor(host: string): number {
    return this.early.get(host)?.length ?? 0;
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = null;
    if (this.check) clearInterval(this.check);
    this.check = null;
    this.early.clear();
  }

  /** Open jobs whose record is final: the bus lost their end (or it is late); said from the record, after a last fill. */
  private checkRecords(): void {
    for (const [jobId, t] of this.tracks) {
      if (t.ended) continue;
      const rec = this.d.jobs.get!(jobId);
      if (rec && FINAL_STATES.has(rec.state)) this.deliver(endEvent(rec), true);
    }
  }

  /**
   * Shown at once, in the bus's turn, unless the job's output has a gap to
   * fill from the store first (or events wait behind one): then in order,
   * after it. A fan-out's started and end events cost no promise each. After
   * the job's end nothing more of it is shown: an end told twice (by the bus
   * and the record, or replayed at another hub) counts once. FROMRECORD: an
   * end said from the job's record, after a last fill of what is stored.
   */
  private deliver(e: JobBusEvent, fromRecord = false): void {
    const t = this.tracks.get(e.jobId)!;
    if (t.ended) return;
    if (e.ev === 'end') t.ended = true;
    if (t.waiting === 0 && !fromRecord && !missing(t, e)) {
      try {
        this.show(t, e);
      } catch (err) {
        this.d.log.warn({ jobId: e.jobId, err: (err as Error).message }, 'following a job failed');
      }
      return;
    }
    t.waiting += 1;
    t.chain = (t.chain ?? Promise.resolve())
      .then(async () => {
        const waitMs = this.d.fillWaitMs ?? FILL_WAIT_MS;
        const w = e.ev === 'output' ? writerOf(e) : endWriter(t, e);
        if (e.ev === 'output' && missing(t, e)) await fillFromStore(this.d, t, { jobId: e.jobId, host: e.host, w, through: e.seq - 1, waitMs });
        // The end: the lines lost just before it, as far as it says the output goes (and, after a move, what the
        // old writer stored late). Without a count (an older hub) only an end said from the record reads what
        // is stored: a bus end is shown as it always was.
        if (e.ev === 'end' && (e.lines !== undefined || fromRecord)) await fillFromStore(this.d, t, { jobId: e.jobId, host: e.host, w, through: e.lines ?? Infinity, waitMs: e.lines === undefined ? 0 : waitMs });
        this.show(t, e);
      })
      .catch((err: Error) => this.d.log.warn({ jobId: e.jobId, err: err.message }, 'following a job failed'))
      .then(() => { t.waiting -= 1; });
  }

  private show(t: Track, e: JobBusEvent): void {
    if (e.ev === 'output') {
      if (!markShown(t, writerOf(e), e.seq)) return;
      // The bus's seq stays inside the hub here (admin-output.ts).
      this.d.reply(outputForAdmin(e.host, e.jobId, e));
      return;
    }
    if (e.ev === 'end') {
      this.d.reply(endForAdmin(e));
      this.d.ended(e.jobId);
      return;
    }
    this.d.reply(e);
  }
}

/**
 * Lines the follower has not shown and the event says exist: a gap before an
 * output line, or before an end that counts more. After a move (more than one
 * writer shown), every end reads the store once: the old writer's lines
 * stored late are shown before it.
 */
function missing(t: Track, e: JobBusEvent): boolean {
  if (e.ev === 'output') return gapBefore(t, writerOf(e), e.seq);
  if (e.ev !== 'end' || e.lines === undefined) return false;
  return t.shown.size > 1 || (e.lines > 0 && gapBefore(t, endWriter(t, e), e.lines + 1));
}

/**
 * Whose numbering an end's `lines` is in: the writer it names, else (an end
 * from an older hub's record) the newest writer shown, the one that ended it.
 */
function endWriter(t: Track, e: JobBusEvent): string {
  if (e.ev === 'end' && e.w !== undefined) return e.w;
  let newest = '';
  for (const w of t.shown.keys()) newest = w; // in the order the writers were first shown
  return newest;
}

/**
 * Keep E for a trigger in flight. Past MAX_EARLY the oldest output lines go
 * (a quarter at once, so a flood does not scan the list per line): the
 * follower refills them from the store by seq. Started and end events stay.
 */
function keep(kept: JobBusEvent[], e: JobBusEvent): void {
  kept.push(e);
  if (kept.length <= MAX_EARLY) return;
  let drop = MAX_EARLY >> 2;
  let w = 0;
  for (let r = 0; r < kept.length; r++) {
    const k = kept[r]!;
    if (drop > 0 && k.ev === 'output') { drop -= 1; continue; }
    kept[w++] = k;
  }
  kept.length = w;
}
