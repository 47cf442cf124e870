// One job's event stream for a dashboard page (/jobs/ID/events): what the
// page missed, then the live lines, then "end". All of it goes through one
// OutputOrder (admin/output-order.ts), as `trigger --wait` shows a job: each
// line once by who numbered it, lines the bus lost filled from the stored
// output. Before, the page showed the bus's lines as they came: after a host
// moved mid-job it dropped nothing and filled nothing, so the new holder's
// lines under the old holder's seqs were shown twice over and lines the bus
// lost were missing (found by review, docs/cluster.md "Seqs reused when a
// host moves mid-job"). The backlog (the in-memory buffer, job-output.ts, or
// the stored log) and the subscription are joined by the same order: a live
// line already in the backlog is a repeat, one past a gap waits for the fill.
import type { Logger } from '../../common/platform/log.js';
import type { SseStream } from '../../common/platform/web-sse.js';
import type { EventBus, JobBusEvent } from '../events/types.js';
import { END_CHECK_MS } from '../jobs/end-event.js';
import { FINAL_STATES, type JobRecord, type JobStore } from '../store/jobs.js';
import { writerOf, type ShownLine } from '../admin/follow-fill.js';
import { OutputOrder } from '../admin/output-order.js';
import type { BufferedLine, JobOutputBuffer, OutputLine } from './job-output.js';

/** What a page shows of a stored log at most: its last 2 MiB (the full log has the rest). */
const PAGE_LOG_BYTES = 2 * 1024 * 1024;

/** The last part of ALL (stored lines) a page shows, and whether earlier ones were left out. */
export function lastPart<T extends { data: string }>(all: T[]): { lines: T[]; truncated: boolean } {
  let budget = PAGE_LOG_BYTES;
  let from = all.length;
  while (from > 0 && (budget -= all[from - 1]!.data.length + 3) >= 0) from -= 1;
  return { lines: all.slice(from), truncated: from > 0 };
}

export interface JobStreamDeps {
  jobs: Pick<JobStore, 'get' | 'readOutput'>;
  bus: EventBus;
  outputs: Pick<JobOutputBuffer, 'get'>;
  log: Logger;
  /** How long a gap waits for its lines to be stored, ms (default: output-order.ts). */
  fillWaitMs?: number;
  /** How often the record is checked for an end the bus did not bring, ms (default END_CHECK_MS). */
  checkMs?: number;
}

/** Stream job REC's output to SSE until its end (or the page leaves). */
export async function streamJob(d: JobStreamDeps, sse: SseStream, rec: JobRecord): Promise<void> {
  const id = rec.id;
  const number = lineNumbers();
  const order = new OutputOrder({ jobs: d.jobs, log: d.log, ...(d.fillWaitMs !== undefined ? { fillWaitMs: d.fillWaitMs } : {}) }, {
    line: (l) => sse.send('line', { seq: number(l), ts: l.ts, stream: l.stream, data: l.data }, id),
    skipped: (lines, why) => {
      number.skip(lines);
      sse.send('note', { text: `${lines} lines of the output ${why}; the full log: /jobs/${id}/log` });
    },
    event: (e) => {
      if (e.ev === 'started') return sse.send('started', { jobId: id });
      sse.send('end', { outcome: e.outcome, exitCode: e.exitCode, durationMs: e.durationMs, reason: e.reason ?? null });
      sse.close();
    },
  });
  const queue: JobBusEvent[] = [];
  let ready = false;
  const sub = d.bus.subscribe({ jobId: id }, (b) => {
    if (b.kind !== 'job') return;
    if (ready) order.deliver(b.event);
    else queue.push(b.event);
  });
  // The bus is at most once across hubs: an end it lost is found in the record (this hub's view, local: cheap).
  const check = setInterval(() => {
    if (ready) order.endFrom(d.jobs.get(id));
  }, d.checkMs ?? END_CHECK_MS);
  check.unref();
  sse.onClose(() => { sub.unsubscribe(); clearInterval(check); });
  sse.send('reset', {});
  const buf = d.outputs.get(id);
  let plainEnd = false;
  if (buf) {
    // From the buffer in this same tick: the queue is empty, every line of it goes out through the order.
    if (buf.cutLines) sse.send('note', { text: `${buf.cutLines} earlier lines are only in the full log (/jobs/${id}/log)` });
    for (const [w, seq] of buf.cut) order.shown.set(w, seq);
    for (const l of buf.lines) order.deliver({ ev: 'output', host: rec.host, jobId: id, seq: l.seq, ts: l.ts ?? 0, w: l.w, stream: l.stream, data: l.data });
    if (buf.end) order.deliver(buf.end);
  } else {
    // Every stored line is marked shown (the page gets the last part): live lines it holds are repeats.
    const all = await d.jobs.readOutput(id, { identity: true });
    const { lines, truncated } = lastPart(all);
    for (const l of all) {
      order.shown.set(writerOf(l), Math.max(order.shown.get(writerOf(l)) ?? 0, l.ws ?? l.seq));
      if (!l.held) order.place = l.seq;
      number.place(l);
    }
    if (truncated) sse.send('note', { text: `earlier output is only in the full log (/jobs/${id}/log)` });
    for (const l of lines) sse.send('line', { seq: l.seq, ts: l.ts, stream: l.stream, data: l.data }, id);
    // Read after the record was final: the log is whole, and the end is the record's, as it always was.
    plainEnd = FINAL_STATES.has(rec.state);
  }
  const now = d.jobs.get(id) ?? rec;
  if (!order.ended && FINAL_STATES.has(now.state) && queue.length === 0) {
    if (plainEnd) {
      sse.send('end', { outcome: now.state, exitCode: now.exitCode, durationMs: now.durationMs, reason: now.reason });
      sse.close();
      return;
    }
    // The bus lost the end (or it ended while the log was read): what is stored and not shown, then the end.
    order.endFrom(now);
  }
  // Through the order: after the lines a fill still shows.
  if (now.state === 'running') order.deliver({ ev: 'started', host: rec.host, jobId: id });
  ready = true;
  for (const e of queue.splice(0)) order.deliver(e);
}

/**
 * The buffered lines a server-rendered job page lists, numbered as the
 * page's stream numbers them: after a move two writers' seqs overlap, and the
 * page's anchors (#L12) were listed twice (found by review) until the stream
 * replaced them.
 */
export function pageLines(lines: readonly BufferedLine[]): OutputLine[] {
  const number = lineNumbers();
  return lines.map((l) => ({ seq: number(l), ts: l.ts, stream: l.stream, data: l.data }));
}

/**
 * A page's line numbers (its anchors, #L12): each line's seq while the job
 * has had one writer (a single hub: always, as before), counted on from the
 * last one once a second writer is shown (after a move both number from
 * where the stored lines ended, and a page needs each number once).
 */
function lineNumbers(): ((l: ShownLine) => number) & { skip(lines: number): void; place(l: { seq: number; w?: string }): void } {
  let last = 0;
  let writer: string | null | undefined; // undefined: none yet; null: counting
  const number = (l: ShownLine): number => {
    if (writer === undefined) writer = l.w;
    if (writer === l.w) return (last = l.seq);
    writer = null;
    return (last += 1);
  };
  /** A stored line (the log read first) is shown at its place in the log, unique; live lines count on from it once writers differ. */
  const place = (l: { seq: number; w?: string }): void => {
    const w = l.w ?? '';
    if (writer === undefined) writer = w;
    else if (writer !== w) writer = null;
    last = l.seq;
  };
  return Object.assign(number, { skip: (lines: number) => { last += lines; }, place });
}
