// Filling a followed job's gap from its stored output (output-order.ts, for
// trigger --follow and a dashboard job page; job-op.ts's marks). The bus
// is at most once across hubs, and the hub running the job publishes a line
// as soon as it has it, before the line's batch is stored: a gap read at once
// may find the store short of it (found by review: the follower then moved
// past the gap and the lines were never shown). So a fill that finds the
// store ending before the gap does waits for it, with a short backoff up to
// a deadline; past it, the admin is told how many lines are missing here
// (the same `skipped` event a reader that fell behind gets) and the follower
// moves on, so one lost batch cannot hold the stream.
//
// Seqs are compared per writer. A job whose host moved to another hub
// mid-job has two writers for a while (the old hub may still store lines it
// published), each numbering its own lines (hub/cluster/job-output.ts), and
// both may have published different lines under one seq: a follower that
// compared them dropped the new hub's lines as repeats (found by review). So
// the follower keeps the last seq shown per writer, and a fill walks the
// stored output in its order from where the last walk stopped, showing each
// line it has not shown by who numbered it: lines of the old writer stored
// late come out there, once, and the new writer's first lines are waited for
// there too (where its numbering starts is only known from the store).
import type { Logger } from '../../common/platform/log.js';
import type { JobStore } from '../store/jobs.js';
import type { JobOutputLine } from '../store/output-cap.js';
import type { OutputLine } from '../store/types.js';

/** Default time a gap waits for its lines to be stored (NATS acknowledges a batch in milliseconds; a leader election takes seconds). */
export const FILL_WAIT_MS = 5000;
const FIRST_POLL_MS = 50;
const MAX_POLL_MS = 1000;

/** A line as a reader is shown it, from the bus or the store: who numbered it (`w`) and its seq in that numbering. */
export interface ShownLine extends Pick<OutputLine, 'ts' | 'stream' | 'data'> {
  w: string;
  seq: number;
}

/** Where a reader's lines go (an admin's socket, follow.ts; a dashboard page, web/job-stream.ts). */
export interface FillSink {
  line(l: ShownLine): void;
  /** LINES lines of the output will not be shown here; WHY says why ("were never stored"). */
  skipped(lines: number, why: string): void;
}

export interface FillDeps {
  jobs: Pick<JobStore, 'readOutput'>;
  out: FillSink;
  log: Logger;
}

/** Where the follower stands in a job's output. */
export interface FillPlace {
  /** Per writer ('': lines with no tag, from an older hub or a single hub's store), the seq of its last line shown. */
  shown: Map<string, number>;
  /** The stored place up to which every stored line was shown or passed over: the next walk reads after it. */
  place: number;
}

/** The writer of a bus line or end ('' when it names none). */
export function writerOf(e: { w?: string }): string {
  return e.w ?? '';
}

/** A line (or end) of writer W at SEQ: its writer's lines before it that were not shown, if any may exist. */
export function gapBefore(p: FillPlace, w: string, seq: number): boolean {
  const had = p.shown.get(w);
  // A writer not seen yet: only the job's very first line has nothing before it; any other may follow lines of its own the bus lost.
  if (had === undefined) return seq > 1 || p.shown.size > 0;
  return seq > had + 1;
}

/** Mark line SEQ of writer W shown; false when it (or a later line of W) already was. */
export function markShown(p: FillPlace, w: string, seq: number): boolean {
  const had = p.shown.get(w);
  if (had !== undefined && seq <= had) return false;
  p.shown.set(w, seq);
  return true;
}

export interface FillRequest {
  jobId: string;
  /** The writer whose lines the gap is in. */
  w: string;
  /** Its last seq the gap needs (Infinity: whatever is stored, read once: nothing says where the output ends). */
  through: number;
  /** How long to wait for missing lines to be stored (0: one read). */
  waitMs: number;
}

/** Show the stored lines not shown yet, until writer R.w's are shown up to R.through (past missing lines, announced) or the store ends. */
export async function fillFromStore(d: FillDeps, p: FillPlace, r: FillRequest): Promise<void> {
  const deadline = Date.now() + r.waitMs;
  let reached = false;
  for (let pause = FIRST_POLL_MS; ; pause = Math.min(pause * 2, MAX_POLL_MS)) {
    try {
      reached = walk(d, p, r, await d.jobs.readOutput(r.jobId, { afterSeq: p.place, identity: true }));
    } catch (err) {
      // The store cannot say (NATS away, after its own retries): waiting longer would not help.
      d.log.warn({ jobId: r.jobId, err: (err as Error).message }, 'cannot read the lines a follower missed');
      break;
    }
    if (reached || Date.now() + pause > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  if (reached || !Number.isFinite(r.through)) return;
  // Nothing shown at all: the job's output starts at 1. A new writer's start is known only from the store.
  const had = p.shown.get(r.w) ?? (p.shown.size === 0 ? 0 : undefined);
  p.shown.set(r.w, Math.max(had ?? 0, r.through));
  if (had === undefined) {
    d.log.warn({ jobId: r.jobId, writer: r.w }, 'a followed job\'s new output writer stored nothing in time; going on without its lines the bus lost');
    return;
  }
  if (r.through > had) skipped(d, r, r.through - had, `did not reach this hub and were not stored within ${Math.round(r.waitMs / 1000)} s`);
}

/** Show LINES (stored order) the follower has not shown; true once writer R.w's lines through R.through are shown, or stored past it. */
function walk(d: FillDeps, p: FillPlace, r: FillRequest, lines: JobOutputLine[]): boolean {
  for (const l of lines) {
    const w = writerOf(l);
    const ws = l.ws ?? l.seq;
    const had = p.shown.get(w);
    if (had === undefined || ws > had) {
      // Each writer's lines are stored in its order: the ones between are not stored and never will be
      // (dropped while NATS was away). A cut's marker stands for the lines it cut, and says so itself.
      const upTo = w === r.w ? Math.min(ws - 1, r.through) : ws - 1;
      if (had !== undefined && upTo > had && !l.trimmed) {
        skipped(d, r, upTo - had, 'were never stored');
        p.shown.set(w, upTo);
      }
      // The gap's end: the line that revealed it (or a later one) is next, in order.
      if (w === r.w && ws > r.through) return true;
      p.shown.set(w, ws);
      d.out.line({ w, seq: ws, ts: l.ts, stream: l.stream, data: l.data });
    }
    // Lines not stored yet (this hub's own writer still has them) have no place: the next walk reads them again.
    if (!l.held) p.place = l.seq;
  }
  return (p.shown.get(r.w) ?? -1) >= r.through;
}

function skipped(d: FillDeps, r: FillRequest, lines: number, why: string): void {
  d.log.warn({ jobId: r.jobId, lines }, `lines of a followed job ${why}; going on without them`);
  d.out.skipped(lines, why);
}
