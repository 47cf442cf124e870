// A job's output line as an admin is told it (common/protocol/admin.ts), from
// a bus event or a stored line: the bus's `ts` and writer tag stay inside the
// hub, and an agent's note goes out as the stderr line it always was
// ("bento: ..."). One place for that rule: trigger --follow (follow.ts and
// its fills, follow-fill.ts) and `bento-hub job` (job-op.ts) all say lines,
// and lines they cannot show (skippedForAdmin).
import type { AdminEvent } from '../../common/protocol/admin.js';
import type { OutputLine } from '../store/types.js';

export type AdminOutput = Extract<AdminEvent, { ev: 'output' }>;

/** LINE of HOST's job JOBID for an admin; SEQ only where the reader asked for places (`job`). */
export function outputForAdmin(host: string, jobId: string, line: Pick<OutputLine, 'stream' | 'data'>, seq?: number): AdminOutput {
  return { ev: 'output', host, jobId, ...(seq !== undefined ? { seq } : {}), stream: line.stream === 'note' ? 'stderr' : line.stream, data: line.data };
}

/** LINES lines of HOST's job JOBID that this admin will not be shown, and WHY (follow-fill.ts says). */
export function skippedForAdmin(host: string, jobId: string, lines: number, why: string): Extract<AdminEvent, { ev: 'skipped' }> {
  return { ev: 'skipped', host, jobId, lines, bytes: 0, message: `${lines} lines of ${host}'s output ${why}; the full log, once stored: bento-hub job ${jobId}` };
}
