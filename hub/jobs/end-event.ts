// A finished job's `end` event, from its record: what the hub that ends a job
// publishes (job-end.ts), and what a follower says itself when the record is
// final but the bus event did not reach it (admin/follow.ts, admin/job-op.ts),
// so the two never differ.
import type { Outcome } from '../../common/protocol/messages.js';
import type { JobBusEvent } from '../events/types.js';
import type { JobRecord } from '../store/jobs.js';
import { lastOutputSeq } from '../store/output-cap.js';

export type EndEvent = Extract<JobBusEvent, { ev: 'end' }>;

/** REC's end. `lines` only when its record says where its output ends (the follower's last fill goes that far). */
export function endEvent(rec: JobRecord): EndEvent {
  return {
    ev: 'end', host: rec.host, jobId: rec.id, outcome: rec.state as Outcome, exitCode: rec.exitCode,
    durationMs: rec.durationMs ?? 0, ...(rec.reason ? { reason: rec.reason } : {}),
    ...(rec.output ? { lines: lastOutputSeq(rec.output), ...(rec.output.w ? { w: rec.output.w } : {}) } : {}),
  };
}

/** How often a follower looks in a followed job's record for an end the bus did not bring (admin/follow.ts, admin/job-op.ts). */
export const END_CHECK_MS = 2000;

/** END as an admin is told it: where the output ends (`lines`, `w`) is for the hubs' followers, not the reader. */
export function endForAdmin(end: EndEvent): Omit<EndEvent, 'lines' | 'w'> {
  const { lines: _lines, w: _w, ...rest } = end;
  return rest;
}
