// What a job record is (the value under a job id in the keyed store "jobs"),
// the guard that validates one read from a backend, and a hub-less reader.
// JobStore (jobs.ts) writes them; everything else reads this shape.
import type { Action, Outcome } from '../../common/protocol/messages.js';
import { isJobId } from '../../common/protocol/names.js';
import type { OpenKeyedOptions, RecordProgress, StateBackend } from './types.js';
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

/** How far a job has come: a record only ever moves up (a final state is the end). */
const RANK: Readonly<Record<'queued' | 'dispatched' | 'running', number>> = { queued: 0, dispatched: 1, running: 2 };
const FINAL_RANK = 3;

function rank(state: JobState): number {
  return FINAL_STATES.has(state) ? FINAL_RANK : RANK[state as keyof typeof RANK] ?? -1;
}

/**
 * A job record's later state (store/types.ts RecordProgress): a job goes
 * queued, dispatched, running, then a final state it keeps. A record the
 * leader holds further along than a hub's view is one the view's replica
 * missed (the fresh reader that saw 2 of 12 finished jobs `running`,
 * docs/cluster.md). Two final states are not ordered: a final record is
 * settled, never checked.
 */
export const JOB_PROGRESS: RecordProgress<JobRecord> = {
  settled: (v) => FINAL_STATES.has(v.state),
  ahead: (leader, view) => rank(leader.state) > rank(view.state),
  // Not `interrupted`: that is this hub's verdict, which the agent contradicts when it says in its hello
  // that it still runs the job (arrivals.ts writes it running again).
  irreversible: (v) => v.state === 'success' || v.state === 'failure' || v.state === 'rolled-back',
};

/** How every opener of the jobs store opens it (the hub's JobStore and readJobRecords alike). */
export const JOBS_STORE_OPTIONS: OpenKeyedOptions<JobRecord> = { accept: isJobRecord, progress: JOB_PROGRESS };

/** The job records of a backend, read without a hub (tests, offline tools): give it a read-only backend. */
export async function readJobRecords(backend: StateBackend): Promise<JobRecord[]> {
  const s = await backend.openKeyed<JobRecord>(JOBS_STORE, JOBS_STORE_OPTIONS);
  try {
    return [...s.values()];
  } finally {
    await s.close();
  }
}

/**
 * Is the record a store holds exactly the one this hub wrote? (A record read
 * back from a store is parsed JSON: the same content, not the same object.)
 * A queued job's id is shared by every hub, so "this id" is not "this write".
 */
export function sameRecord(a: JobRecord, b: JobRecord): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
