// The recent output of each job in memory, so a browser that opens a job
// mid-way gets what it missed and then the live lines, with no gap and no
// duplicate (both happen in one tick of the event loop). Bounded: the tail of
// each job (maxBytesPerJob) and a global budget; a job over budget falls back
// to its log file on disk. Finished jobs are dropped after a grace period,
// by when their log file is complete.
import type { JobBusEvent } from '../events/types.js';
import type { OutputLine } from '../store/types.js';

export type { OutputLine };

interface Buffered {
  host: string;
  lines: OutputLine[];
  bytes: number;
  /** Lines dropped from the front (tail only). */
  dropped: number;
  end: Extract<JobBusEvent, { ev: 'end' }> | null;
  timer: NodeJS.Timeout | null;
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
      this.jobs.set(e.jobId, (b = { host: e.host, lines: [], bytes: 0, dropped: 0, end: null, timer: null }));
    }
    if (e.ev === 'output') {
      const size = e.data.length + 16;
      if (this.total + size > this.opts.maxBytesTotal) {
        b.dropped++;
        return;
      }
      b.lines.push({ seq: e.seq, ts: e.ts, stream: e.stream, data: e.data });
      b.bytes += size;
      this.total += size;
      while (b.bytes > this.opts.maxBytesPerJob && b.lines.length > 1) {
        const gone = b.lines.shift()!;
        b.bytes -= gone.data.length + 16;
        this.total -= gone.data.length + 16;
        b.dropped++;
      }
    } else if (e.ev === 'end') {
      b.end = e;
      b.timer = setTimeout(() => this.forget(e.jobId), this.opts.keepAfterEndMs);
      b.timer.unref();
    }
  }

  /** What is buffered for a job: null when nothing (then the log file is the source). */
  get(jobId: string): { lines: OutputLine[]; dropped: number; end: Extract<JobBusEvent, { ev: 'end' }> | null } | null {
    const b = this.jobs.get(jobId);
    return b ? { lines: b.lines, dropped: b.dropped, end: b.end } : null;
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
