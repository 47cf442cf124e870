// Filling a followed job's gap from its stored output (follow.ts). The bus
// is at most once across hubs, and the hub running the job publishes a line
// as soon as it has it, before the line's batch is stored: a gap read at once
// may find the store short of it (found by review: the follower then moved
// past the gap and the lines were never shown). So a fill that finds the
// store ending before the gap does waits for it, with a short backoff up to
// a deadline; past it, the admin is told how many lines are missing here
// (the same `skipped` event a reader that fell behind gets) and the follower
// moves on, so one lost batch cannot hold the stream.
import type { Logger } from '../../common/platform/log.js';
import type { JobStore } from '../store/jobs.js';
import type { Reply } from './server.js';

/** Default time a gap waits for its lines to be stored (NATS acknowledges a batch in milliseconds; a leader election takes seconds). */
export const FILL_WAIT_MS = 5000;
const FIRST_POLL_MS = 50;
const MAX_POLL_MS = 1000;

export interface FillDeps {
  jobs: Pick<JobStore, 'readOutput'>;
  reply: Reply;
  log: Logger;
}

/** Where the follower stands in a job's output: the seq of the last line shown. */
export interface FillPlace { last: number }

export interface FillRequest {
  jobId: string;
  host: string;
  /** The last seq the gap needs (Infinity: whatever is stored, read once: nothing says where the output ends). */
  through: number;
  /** How long to wait for missing lines to be stored (0: one read). */
  waitMs: number;
}

/** Show the stored lines after P.last up to R.through; P.last ends at R.through (past missing lines, announced) or where the store ends. */
export async function fillFromStore(d: FillDeps, p: FillPlace, r: FillRequest): Promise<void> {
  const deadline = Date.now() + r.waitMs;
  for (let pause = FIRST_POLL_MS; ; pause = Math.min(pause * 2, MAX_POLL_MS)) {
    try {
      for (const l of await d.jobs.readOutput(r.jobId, { afterSeq: p.last })) {
        if (l.seq > r.through) break;
        if (l.seq <= p.last) continue;
        p.last = l.seq;
        d.reply({ ev: 'output', host: r.host, jobId: r.jobId, stream: l.stream === 'note' ? 'stderr' : l.stream, data: l.data });
      }
    } catch (err) {
      // The store cannot say (NATS away, after its own retries): waiting longer would not help.
      d.log.warn({ jobId: r.jobId, err: (err as Error).message }, 'cannot read the lines a follower missed');
      break;
    }
    if (p.last >= r.through || Date.now() + pause > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  if (p.last >= r.through || !Number.isFinite(r.through)) return;
  const lines = r.through - p.last;
  p.last = r.through;
  d.log.warn({ jobId: r.jobId, lines }, 'lines of a followed job neither reached this hub nor were stored in time; going on without them');
  d.reply({
    ev: 'skipped', host: r.host, jobId: r.jobId, lines, bytes: 0,
    message: `${lines} lines of ${r.host}'s output did not reach this hub and were not stored within ${Math.round(r.waitMs / 1000)} s; the full log, once stored: bento-hub job ${r.jobId}`,
  });
}
