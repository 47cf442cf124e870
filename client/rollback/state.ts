// The rollback guard's on-disk record. Written atomically (temp file, fsync,
// rename) before a switch touches anything, so an agent restarted by the
// switch itself, or by a reboot, finds exactly what was running before.
import { readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { writeJsonAtomic } from '../../common/platform/atomic.js';

/** Actions the guard protects; boot, build and dry-activate change nothing that runs now. */
export type GuardedAction = 'switch' | 'test';

export interface GuardRecord {
  version: 1;
  jobId: string;
  action: GuardedAction;
  /** The exact store path that was running (realpath of currentSystem) before the job. */
  previousSystem: string;
  /** The store path the system profile pointed at before the job (null: no profile yet). */
  previousProfile: string | null;
  /** The profile generation number before the job, for messages only. */
  previousGeneration: number | null;
  /** switching: the rebuild runs (or ran, if the agent died); confirming: it succeeded and the deadline runs. */
  phase: 'switching' | 'confirming';
  recordedAt: string;
  /** Wall-clock deadline (ISO) for a fresh connection to the hub; set when phase becomes confirming. */
  deadline: string | null;
  timeoutMs: number;
}

export function guardFile(stateDir: string): string {
  return path.join(stateDir, 'rollback-guard.json');
}

export async function readGuard(stateDir: string): Promise<GuardRecord | null> {
  let text: string;
  try {
    text = await readFile(guardFile(stateDir), 'utf8');
  } catch {
    return null;
  }
  try {
    const g = JSON.parse(text) as GuardRecord;
    // The agent writes this file itself; a record of another shape is not acted on (re-activating a path from it would be a guess).
    if (g.version !== 1 || typeof g.previousSystem !== 'string' || typeof g.jobId !== 'string') return null;
    if ((g.action !== 'switch' && g.action !== 'test') || (g.phase !== 'switching' && g.phase !== 'confirming')) return null;
    if (typeof g.timeoutMs !== 'number' || !(g.timeoutMs > 0) || (g.deadline !== null && typeof g.deadline !== 'string')) return null;
    return g;
  } catch {
    return null; // atomic writes never tear; anything else is foreign
  }
}

export async function writeGuard(stateDir: string, g: GuardRecord): Promise<void> {
  await writeJsonAtomic(guardFile(stateDir), g, { mode: 0o600 });
}

export async function clearGuard(stateDir: string): Promise<void> {
  await unlink(guardFile(stateDir)).catch(() => undefined);
}
