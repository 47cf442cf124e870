// One job's events shown to one reader in order, each output line once:
// `trigger --wait`/`--follow` (follow.ts, per followed job) and a dashboard
// job page (web/job-stream.ts) both show a job through this, so the two never
// differ (the dashboard showed the bus's lines as they came, repeats and gaps
// included, after a host moved mid-job: found by review). Output lines carry
// their place in the job's output (seq), as their writer numbers it (a job
// moved mid-job has more than one: seqs are compared per writer,
// follow-fill.ts): a repeat is dropped, and a gap (events are at most once
// across hubs) is filled from the stored output before the line that
// revealed it, or before the end when the end says the job printed more than
// was shown (follow-fill.ts waits for lines not stored yet).
import type { Logger } from '../../common/platform/log.js';
import type { JobBusEvent } from '../events/types.js';
import { FINAL_STATES, type JobRecord, type JobStore } from '../store/jobs.js';
import { endEvent } from '../jobs/end-event.js';
import { FILL_WAIT_MS, fillFromStore, gapBefore, markShown, writerOf, type FillPlace, type FillSink } from './follow-fill.js';

/** Where a reader's events go: lines and skips (follow-fill.ts), and the job's started and end events, in order. */
export interface OrderSink extends FillSink {
  event(e: Exclude<JobBusEvent, { ev: 'output' }>): void;
}

export interface OrderDeps {
  /** Stored output (gaps). */
  jobs: Pick<JobStore, 'readOutput'>;
  log: Logger;
  /** How long a gap waits for its lines to be stored, ms (default follow-fill.ts FILL_WAIT_MS). */
  fillWaitMs?: number;
  /** Output kept behind a fill, bytes (default MAX_WAITING_BYTES). */
  maxWaitingBytes?: number;
}

/**
 * Output waiting behind a fill, per reader, at most (bytes of data): past it
 * a line is not kept but read from the store once the fill is done (it is
 * stored by then, or announced skipped), so a host flooding output while a
 * reader's gap is filled (up to FILL_WAIT_MS) costs the hub no more than this
 * per followed job and reader: every buffer has a limit (hostile peers).
 * Before, the whole flood waited in the chain (50 MiB in
 * test/unit/output-order-bound).
 */
export const MAX_WAITING_BYTES = 4 * 1024 * 1024;

export class OutputOrder implements FillPlace {
  readonly shown = new Map<string, number>();
  place = 0;
  /** The end went out (or waits behind a fill): nothing more of the job is shown. */
  ended = false;
  private chain: Promise<void> | null = null;
  private waiting = 0;
  private waitingBytes = 0;
  /** Output lines were let go while waiting (MAX_WAITING_BYTES): the end reads what is stored and not shown. */
  private letGo = false;

  constructor(private readonly d: OrderDeps, private readonly out: OrderSink) {}

  /**
   * Shown at once, in the bus's turn, unless the job's output has a gap to
   * fill from the store first (or events wait behind one): then in order,
   * after it. A fan-out's started and end events cost no promise each. After
   * the job's end nothing more of it is shown: an end told twice (by the bus
   * and the record, or replayed at another hub) counts once. FROMRECORD: an
   * end said from the job's record, after a last fill of what is stored.
   */
  deliver(e: JobBusEvent, fromRecord = false): void {
    if (this.ended) return;
    if (e.ev === 'end') this.ended = true;
    if (this.waiting === 0 && !fromRecord && !this.missing(e)) {
      try {
        this.show(e);
      } catch (err) {
        this.d.log.warn({ jobId: e.jobId, err: (err as Error).message }, 'following a job failed');
      }
      return;
    }
    const bytes = e.ev === 'output' ? e.data.length : 0;
    if (bytes && this.waitingBytes + bytes > (this.d.maxWaitingBytes ?? MAX_WAITING_BYTES)) {
      // A later line shows the gap, and the end reads the store (letGo): this one comes from there.
      this.letGo = true;
      return;
    }
    this.waiting += 1;
    this.waitingBytes += bytes;
    this.chain = (this.chain ?? Promise.resolve())
      .then(async () => {
        const waitMs = this.d.fillWaitMs ?? FILL_WAIT_MS;
        const fill = { jobs: this.d.jobs, out: this.out, log: this.d.log };
        const w = e.ev === 'output' ? writerOf(e) : this.endWriter(e);
        if (e.ev === 'output' && this.missing(e)) await fillFromStore(fill, this, { jobId: e.jobId, w, through: e.seq - 1, waitMs });
        // The end: the lines lost just before it, as far as it says the output goes (and, after a move, what the
        // old writer stored late). Without a count (an older hub) only an end said from the record reads what
        // is stored: a bus end is shown as it always was.
        if (e.ev === 'end' && (e.lines !== undefined || fromRecord || this.letGo)) await fillFromStore(fill, this, { jobId: e.jobId, w, through: e.lines ?? Infinity, waitMs: e.lines === undefined ? 0 : waitMs });
        this.show(e);
      })
      .catch((err: Error) => this.d.log.warn({ jobId: e.jobId, err: err.message }, 'following a job failed'))
      .then(() => { this.waiting -= 1; this.waitingBytes -= bytes; });
  }

  /** REC is the job's record: once it is final, its end (which the bus lost, or brings late) is said from it, after a last fill. */
  endFrom(rec: JobRecord | undefined): void {
    if (rec && FINAL_STATES.has(rec.state)) this.deliver(endEvent(rec), true);
  }

  private show(e: JobBusEvent): void {
    if (e.ev !== 'output') return this.out.event(e);
    const w = writerOf(e);
    if (markShown(this, w, e.seq)) this.out.line({ w, seq: e.seq, ts: e.ts, stream: e.stream, data: e.data });
  }

  /**
   * Lines not shown that the event says exist: a gap before an output line,
   * or before an end that counts more. After a move (more than one writer
   * shown), every end reads the store once: the old writer's lines stored
   * late are shown before it.
   */
  private missing(e: JobBusEvent): boolean {
    if (e.ev === 'output') return gapBefore(this, writerOf(e), e.seq);
    if (e.ev === 'end' && this.letGo) return true;
    if (e.ev !== 'end' || e.lines === undefined) return false;
    return this.shown.size > 1 || (e.lines > 0 && gapBefore(this, this.endWriter(e), e.lines + 1));
  }

  /**
   * Whose numbering an end's `lines` is in: the writer it names, else (an end
   * from an older hub's record) the newest writer shown, the one that ended it.
   */
  private endWriter(e: JobBusEvent): string {
    if (e.ev === 'end' && e.w !== undefined) return e.w;
    let newest = '';
    for (const w of this.shown.keys()) newest = w; // in the order the writers were first shown
    return newest;
  }
}
