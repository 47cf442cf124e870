// What a job record is (the value under a job id in the keyed store "jobs"),
// the guard that validates one read from a backend, and a hub-less reader.
// JobStore (jobs.ts) writes them; everything else reads this shape.
import type { Action, Outcome } from '../../common/protocol/messages.js';
import { isJobId } from '../../common/protocol/names.js';
import type { StateBackend } from './types.js';
import type { OutputSummary } from './output-cap.js';

export type JobState = 'queued' | 'dispatched' | 'running' | Outcome;
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['success', 'failure', 'interrupted', 'rolled-back']);

export interface JobRecord {
  id: string;
  host: string;
  action: Action;
  state: JobState;
  requestedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  exitCode: number | null;
  durationMs: number | null;
  reason: string | null;
  /** trigger --prebuilt: the system store path the agent switches to instead of rebuilding (and the config hash it was built from). */
  storePath?: string;
  configHash?: string;
  /** Several hubs: the hub that wrote this record, and the epoch of its claim on the host (hub/holders). */
  hub?: string;
  epoch?: number;
  /**
   * What the host ran when the job was dispatched to it (or, for a job the
   * host started itself, when the hub heard of it): its hello, kept current
   * by every job.end. Absent in records written before hubs kept it.
   */
  systemBefore?: string | null;
  generationBefore?: number | null;
  /** What it ran after the job, from job.end (generation: agents that send it). Absent for the hub's own verdicts. */
  systemAfter?: string | null;
  generationAfter?: number | null;
  /** The host's own health check after a switch/test (agent setting healthCommand; job.end health), when it has one. */
  health?: 'passed' | 'failed';
  /** Its stored output: size, cuts (over limits.jobOutputBytes), dropped (the host's limits.hostOutputBytes); set when it ends. */
  output?: OutputSummary;
}

/** Who may write a host's job records (hub/holders/types.ts HostHolders.stamp). */
export interface JobFence {
  /** The stamp to write HOST's records with (null: none needed); throws when this hub must not write them. */
  stamp(host: string): { hub: string; epoch: number } | null;
}

/** The keyed store job records live in. */
export const JOBS_STORE = 'jobs';

export function isJobRecord(key: string, v: unknown): v is JobRecord {
  const r = v as Partial<JobRecord> | null;
  return typeof r === 'object' && r !== null && r.id === key && isJobId(key)
    && typeof r.host === 'string' && typeof r.state === 'string' && typeof r.requestedAt === 'string';
}

/** The job records of a backend, read without a hub (tests, offline tools): give it a read-only backend. */
export async function readJobRecords(backend: StateBackend): Promise<JobRecord[]> {
  const s = await backend.openKeyed<JobRecord>(JOBS_STORE, { accept: isJobRecord });
  try {
    return [...s.values()];
  } finally {
    await s.close();
  }
}
