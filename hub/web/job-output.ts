// The recent output of each job in memory, so a browser that opens a job
// mid-way gets what it missed and then the live lines (job-stream.ts: both
// go through one OutputOrder, so no gap and no duplicate). Each line once per
// writer: a job whose host moved mid-job has two writers numbering their
// own lines, and a line the bus brings twice is not kept twice (found by
// review: the page showed both). Lines the bus lost are not here: the page's
// stream fills them from the stored output. Bounded: the tail of each job
// (maxBytesPerJob) and a global budget (a line over it is not kept: a gap the
// stream fills). Finished jobs are dropped after a grace period, by when
// their log file is complete.
import type { JobBusEvent } from '../events/types.js';
import type { OutputLine } from '../store/types.js';

export type { OutputLine };

/** A buffered line: its writer ('' untagged) and that writer's seq. */
export type BufferedLine = OutputLine & { w: string };

interface Buffered {
  host: string;
  lines: BufferedLine[];
  bytes: number;
  /** Lines not kept: dropped from the front (tail only), or over the global budget. */
  dropped: number;
  /** Of them, the ones dropped from the front. */
  cutLines: number;
  /** Per writer, the seq of its last line taken in: one at or below it is a repeat. */
  last: Map<string, number>;
  /** Per writer, the seq of its last line dropped from the front: a page starts after it (the lines are only in the full log). */
  cut: Map<string, number>;
  end: Extract<JobBusEvent, { ev: 'end' }> | null;
  timer: NodeJS.Timeout | null;
}

export interface BufferedJob {
  lines: BufferedLine[];
  /** Lines not kept (the page's note); `cutLines` of them from the front, the last one of each writer in `cut`. */
  dropped: number;
  cutLines: number;
  cut: ReadonlyMap<string, number>;
  end: Extract<JobBusEvent, { ev: 'end' }> | null;
}

export class JobOutputBuffer {
  private readonly jobs = new Map<string, Buffered>();
  private total = 0;

  constructor(private readonly opts = { maxBytesPerJob: 256 * 1024, maxBytesTotal: 64 * 1024 * 1024, keepAfterEndMs: 60_000 }) {}

  /** Feed every job event here (the bus, { all: true }). */
  onEvent(e: JobBusEvent): void {
    let b = this.jobs.get(e.jobId);
    if (!b) {
      if (e.ev === 'end') return;
      this.jobs.set(e.jobId, (b = { host: e.host, lines: [], bytes: 0, dropped: 0, cutLines: 0, last: new Map(), cut: new Map(), end: null, timer: null }));
    }
    if (e.ev === 'output') {
      const w = e.w ?? '';
      const had = b.last.get(w);
      if (had !== undefined && e.seq <= had) return;
      b.last.set(w, e.seq);
      const size = e.data.length + 16;
      if (this.total + size > this.opts.maxBytesTotal) {
        b.dropped++;
        return;
      }
      b.lines.push({ seq: e.seq, ts: e.ts, stream: e.stream, data: e.data, w });
      b.bytes += size;
      this.total += size;
      while (b.bytes > this.opts.maxBytesPerJob && b.lines.length > 1) {
        const gone = b.lines.shift()!;
        b.cut.set(gone.w, gone.seq);
        b.cutLines++;
        b.bytes -= gone.data.length + 16;
        this.total -= gone.data.length + 16;
        b.dropped++;
      }
    } else if (e.ev === 'end' && !b.end) {
      b.end = e;
      b.timer = setTimeout(() => this.forget(e.jobId), this.opts.keepAfterEndMs);
      b.timer.unref();
    }
  }

  /** What is buffered for a job: null when nothing (then the log file is the source). */
  get(jobId: string): BufferedJob | null {
    const b = this.jobs.get(jobId);
    return b ? { lines: b.lines, dropped: b.dropped, cutLines: b.cutLines, cut: b.cut, end: b.end } : null;
  }

  private forget(jobId: string): void {
    const b = this.jobs.get(jobId);
    if (!b) return;
    this.total -= b.bytes;
    this.jobs.delete(jobId);
  }

  close(): void {
    for (const b of this.jobs.values()) if (b.timer) clearTimeout(b.timer);
    this.jobs.clear();
    this.total = 0;
  }
}
