// The cap on a job's stored output (issue 13 part 4): one job printing
// 500 MB must not leave a 500 MB log. Applied above the JobOutputStore, in
// JobStore, so every backend (files, NATS) gets it without a change to the
// store contract: append-only logs cannot drop lines in the middle, so the
// middle is never written.
//
// A job's first (jobOutputBytes - jobOutputTailBytes) go to the store as they
// come (the head). After that, lines wait in memory in a ring of at most
// jobOutputTailBytes (the tail: where a failed build says why), the oldest
// falling out as new ones come. When the job ends (or the hub stops), a marker
// line saying how many lines and bytes were cut, then the tail, are appended.
//
// Seqs: every line keeps the seq it got on arrival (live followers saw it),
// so stored lines after a cut are numbered past the gap. The store numbers
// what it holds 1, 2, 3...; the record keeps where each cut's marker sits
// (JobRecord.output.cuts), and reads map stored seqs back. Lines are costed
// as stored (JSON text plus framing), so a flood of tiny or escaped lines
// counts what it costs on disk.
import type { JobOutputStore, OutputLine, OutputReadOptions } from './types.js';

export interface OutputLimits {
  /** Stored output per job: the head and the tail are kept, the middle is cut. */
  jobOutputBytes: number;
  /** The part of jobOutputBytes kept from the end (held in memory while the job runs). */
  jobOutputTailBytes: number;
  /** Stored output of one host's finished jobs together; the oldest jobs' output is dropped first. */
  hostOutputBytes: number;
}

export const OUTPUT_DEFAULTS: Readonly<OutputLimits> = Object.freeze({
  jobOutputBytes: 16 * 1024 * 1024,
  jobOutputTailBytes: 1024 * 1024,
  hostOutputBytes: 64 * 1024 * 1024,
});

export const OUTPUT_RANGES: Record<keyof OutputLimits, [number, number]> = {
  jobOutputBytes: [64 * 1024, 1024 * 1024 * 1024],
  jobOutputTailBytes: [16 * 1024, 64 * 1024 * 1024],
  hostOutputBytes: [64 * 1024, 1024 * 1024 * 1024 * 1024],
};

/** Cross-field rules; `bad` throws. */
export function checkOutputLimits(l: OutputLimits, bad: (msg: string) => never): void {
  if (l.jobOutputTailBytes * 2 > l.jobOutputBytes) bad(`"jobOutputTailBytes" (${l.jobOutputTailBytes}) must be at most half of "jobOutputBytes" (${l.jobOutputBytes})`);
  if (l.hostOutputBytes < l.jobOutputBytes) bad(`"hostOutputBytes" (${l.hostOutputBytes}) must be at least "jobOutputBytes" (${l.jobOutputBytes})`);
}

/** Tails of all running jobs together (fixed): past it, the job adding a line trims its own tail. */
export const TAIL_MEMORY_BYTES = 32 * 1024 * 1024;

/** One cut in a job's stored output: the stored seq of its marker line, and the lines and bytes it stands for. */
export interface OutputCut { at: number; lines: number; bytes: number }

/** What a job record says about its stored output (JobRecord.output). */
export interface OutputSummary {
  /** Lines and bytes stored (markers included; bytes as stored). */
  lines: number;
  bytes: number;
  cuts?: OutputCut[];
  /** Dropped to keep the host under hostOutputBytes. */
  dropped?: boolean;
  /**
   * The tag of the writer whose numbering `lines` (and the cuts) count in,
   * when the output store has writers (cluster, store/types.ts OutputLine.w):
   * the end event says it, so a follower reads `lines` as that writer's.
   */
  w?: string;
}

/** A stored line as readers get it: a cut's marker carries what was cut. */
export interface JobOutputLine extends OutputLine {
  trimmed?: { lines: number; bytes: number };
}

/** Counts for the metrics. */
export class OutputCapStats {
  /** Jobs whose output was cut in the middle, and the bytes cut. */
  trimmedJobs = 0;
  trimmedBytes = 0;
  /** Finished jobs whose stored output was dropped for their host's total, and its bytes. */
  droppedJobs = 0;
  droppedBytes = 0;
  /** Bytes of tails held in memory now. */
  tailBytes = 0;
}

/** `ts`: when it came (kept when the tail is stored at the job's end). */
interface TailLine { seq: number; ts: number; stream: OutputLine['stream']; data: string; cost: number }

interface OpenJob {
  /** Bytes stored (as costed by lineCost). */
  stored: number;
  /** Seq of the last line given out, and the stored seq of the last stored line (= lines stored). */
  last: number;
  lastStored: number;
  cuts: OutputCut[];
  tail: TailLine[];
  tailHead: number;
  tailBytes: number;
  cutLines: number;
  cutBytes: number;
  /** The output store's writer tag for the job (its last append said it): the held tail goes out under it too. */
  w?: string;
}

/** Characters JSON escapes (and so stores as more bytes than they are; surrogates: a lone one is escaped). */
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** What a stored line costs on disk: its JSON text and the framing around it. */
export function lineCost(data: string): number {
  // Plain text (nearly every line) is costed without building its JSON a second time.
  // Framing: [SEQ,"o",...,TS]\n with a seq of up to 8 digits and a 13-digit time (job-log.ts).
  return (ESCAPED.test(data) ? Buffer.byteLength(JSON.stringify(data)) : Buffer.byteLength(data) + 2) + 32;
}

export function cutMarker(lines: number, bytes: number, limits: OutputLimits): string {
  return `bento: ${lines} lines (${bytes} bytes) of output cut here: the job printed more than its cap `
    + `(limits.jobOutputBytes, ${limits.jobOutputBytes} bytes); its first ${limits.jobOutputBytes - limits.jobOutputTailBytes} and last ${limits.jobOutputTailBytes} bytes are kept`;
}

export class OutputCap {
  private readonly jobs = new Map<string, OpenJob>();
  readonly stats = new OutputCapStats();

  constructor(private readonly output: JobOutputStore, private readonly limits: OutputLimits) {}

  /** Append a line of a running job (`was`: what its record says, after a hub restart); returns its seq and time. */
  append(jobId: string, was: OutputSummary | undefined, stream: OutputLine['stream'], data: string): { seq: number; ts: number; w?: string } {
    const j = this.open(jobId, was);
    const cost = lineCost(data);
    if (j.tail.length === j.tailHead && j.stored + cost <= this.limits.jobOutputBytes - this.limits.jobOutputTailBytes) {
      j.stored += cost;
      const { seq: stored, ts, w } = this.output.append(jobId, stream, data);
      j.lastStored = stored;
      j.last = j.lastStored + shiftAt(j.cuts, j.lastStored);
      j.w = w;
      return { seq: j.last, ts, ...(w ? { w } : {}) };
    }
    const seq = ++j.last;
    const ts = Date.now();
    // Held lines go out under the tag they will be stored with (after a restart, the first line may come here).
    j.w ??= this.output.writerTag?.(jobId);
    j.tail.push({ seq, ts, stream, data, cost });
    j.tailBytes += cost;
    this.stats.tailBytes += cost;
    while (j.tail.length - j.tailHead > 1 && (j.tailBytes > this.limits.jobOutputTailBytes || this.stats.tailBytes > TAIL_MEMORY_BYTES)) {
      const gone = j.tail[j.tailHead]!;
      j.tail[j.tailHead++] = undefined as unknown as TailLine;
      j.tailBytes -= gone.cost;
      this.stats.tailBytes -= gone.cost;
      j.cutLines++;
      j.cutBytes += gone.cost;
    }
    if (j.tailHead > 4096 && j.tailHead * 2 > j.tail.length) {
      j.tail = j.tail.slice(j.tailHead);
      j.tailHead = 0;
    }
    return { seq, ts, ...(j.w ? { w: j.w } : {}) };
  }

  /**
   * Store what waits (marker, tail) and forget the job: its end, or the hub
   * stopping. Returns the summary for its record (undefined: no output here).
   */
  finish(jobId: string): OutputSummary | undefined {
    const j = this.jobs.get(jobId);
    if (!j) return undefined;
    this.jobs.delete(jobId);
    if (j.cutLines > 0) {
      const marker = cutMarker(j.cutLines, j.cutBytes, this.limits);
      // The marker sits where the cut is: it takes the time of the first line kept after it.
      const { seq: at, w } = this.output.append(jobId, 'stderr', marker, j.tail[j.tailHead]?.ts);
      j.lastStored = at;
      j.w = w;
      j.cuts.push({ at, lines: j.cutLines, bytes: j.cutBytes });
      j.stored += lineCost(marker);
      this.stats.trimmedJobs++;
      this.stats.trimmedBytes += j.cutBytes;
    }
    for (let i = j.tailHead; i < j.tail.length; i++) {
      const l = j.tail[i]!;
      const r = this.output.append(jobId, l.stream, l.data, l.ts);
      j.lastStored = r.seq;
      j.w = r.w;
      j.stored += l.cost;
    }
    this.stats.tailBytes -= j.tailBytes;
    return { lines: j.lastStored, bytes: j.stored, ...(j.cuts.length ? { cuts: j.cuts } : {}), ...(j.w ? { w: j.w } : {}) };
  }

  /** Forget a job without storing anything (its record is gone). */
  forget(jobId: string): void {
    const j = this.jobs.get(jobId);
    if (!j) return;
    this.stats.tailBytes -= j.tailBytes;
    this.jobs.delete(jobId);
  }

  /** Jobs with output waiting here. */
  openJobs(): string[] {
    return [...this.jobs.keys()];
  }

  /**
   * A job's output after `afterSeq`: the stored lines (seqs mapped back, a
   * cut's marker flagged), then for a running job the cut so far and its tail.
   */
  async read(jobId: string, was: OutputSummary | undefined, opts: OutputReadOptions): Promise<JobOutputLine[]> {
    const j = this.jobs.get(jobId);
    const cuts = j?.cuts ?? was?.cuts ?? [];
    const after = opts.afterSeq ?? 0;
    const stored = await this.output.read(jobId, { ...opts, afterSeq: toStored(cuts, after) });
    const out: JobOutputLine[] = [];
    let budget = opts.limitBytes ?? Infinity;
    let lastStored = toStored(cuts, after);
    for (const l of stored) {
      lastStored = l.seq;
      const cut = cuts.find((c) => c.at === l.seq);
      const seq = l.seq + shiftAt(cuts, l.seq);
      // A writer's own seqs map past the cuts as the places do (a cut's `at` is the seq append() returned).
      const line = l.ws === undefined ? { ...l, seq } : { ...l, seq, ws: l.ws + shiftAt(cuts, l.ws) };
      out.push(cut ? { ...line, trimmed: { lines: cut.lines, bytes: cut.bytes } } : line);
      budget -= Buffer.byteLength(l.data);
    }
    // The running job's part that is not stored yet, once the stored part was read to its end.
    if (!j || lastStored < j.lastStored || (out.length > 0 && budget <= 0)) return out;
    if (j.cutLines > 0) {
      const seq = (j.tail[j.tailHead]?.seq ?? j.last + 1) - 1;
      if (seq > after) out.push({ seq, ts: j.tail[j.tailHead]?.ts ?? null, stream: 'stderr', data: cutMarker(j.cutLines, j.cutBytes, this.limits), trimmed: { lines: j.cutLines, bytes: j.cutBytes }, ...held(opts, j, seq) });
    }
    for (let i = j.tailHead; i < j.tail.length && budget > 0; i++) {
      const l = j.tail[i]!;
      if (l.seq <= after) continue;
      out.push({ seq: l.seq, ts: l.ts, stream: l.stream, data: l.data, ...held(opts, j, l.seq) });
      budget -= Buffer.byteLength(l.data);
    }
    return out;
  }

  private open(jobId: string, was: OutputSummary | undefined): OpenJob {
    let j = this.jobs.get(jobId);
    if (!j) {
      // After a hub restart the job goes on where its record says its output stood (a crash: from 0, so at most twice the cap).
      const cuts = was?.cuts ? [...was.cuts] : [];
      const lastStored = was?.lines ?? 0;
      j = { stored: was?.bytes ?? 0, last: lastStored + shiftAt(cuts, lastStored), lastStored, cuts, tail: [], tailHead: 0, tailBytes: 0, cutLines: 0, cutBytes: 0 };
      this.jobs.set(jobId, j);
    }
    return j;
  }
}

/** What an identity read says of a line held in memory (store/types.ts OutputLine): not stored, numbered by this hub's writer. */
function held(opts: OutputReadOptions, j: OpenJob, seq: number): Partial<OutputLine> {
  return opts.identity ? { w: j.w ?? '', ws: seq, held: true } : {};
}

/** The seq of a finished job's last output line (as its followers saw it) from its record's summary: 0 when it printed nothing. */
export function lastOutputSeq(o: OutputSummary): number {
  return o.lines + shiftAt(o.cuts ?? [], o.lines);
}

/** How far the seqs of stored lines at or after `stored` are from their stored place (the cuts before them). */
function shiftAt(cuts: OutputCut[], stored: number): number {
  let shift = 0;
  for (const c of cuts) if (stored >= c.at) shift += c.lines - 1;
  return shift;
}

/** The stored seq to read after, for a reader that has everything up to seq `after`. */
function toStored(cuts: OutputCut[], after: number): number {
  let shift = 0;
  for (const c of cuts) {
    const next = shift + c.lines - 1;
    // Lines before this marker map with `shift`; a seq inside the cut means "the marker onwards".
    if (after < c.at + next) return Math.max(0, Math.min(after - shift, c.at - 1));
    shift = next;
  }
  return Math.max(0, after - shift);
}
