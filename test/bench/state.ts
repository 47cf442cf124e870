// Shared mutable state of one bench run, in one place: the numbers, verdicts,
// notes and extras the report prints, the load-generator workers, a few
// run-wide values, and the run's log. Every other bench module imports it.
import type { ChildProcess } from 'node:child_process';
import type { FromWorker, WorkerStats } from './ipc.js';
import type { Waiter } from './worker-request.js';

// ---------------------------------------------------------------- results
export interface Results {
  [k: string]: number;
}
export const M_: Results = {};
export const complete: Record<string, boolean> = {};
export const notes: string[] = [];
export const extras: Record<string, unknown> = {};

// ---------------------------------------------------------------- workers
export interface WorkerHandle { child: ChildProcess; stats: WorkerStats | null; waiters: Array<Waiter<FromWorker>> }
export const workers: ChildProcess[] = [];
export const handles: WorkerHandle[] = [];

/** Values set as the run goes; one object, so every module sees the updates. */
export const run = {
  /** The temporary directory (fleet, OpenSSH); removed on exit unless --keep. */
  baseDir: '',
  fsType: 'unknown',
  /** Why a load-generator worker died, once one has; '' while all are well. */
  workerFailure: '',
  /** Set while the workers are being stopped on purpose. */
  stopping: false,
};

// ---------------------------------------------------------------- log
export const tStart = performance.now();
export function log(msg: string): void {
  process.stderr.write(`[bench ${((performance.now() - tStart) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
