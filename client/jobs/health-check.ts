// healthCommand: the host's own health check, run after a successful switch
// or test (docs/rollouts.md). It answers "does this host work on its new
// system?" the way only the host can (its services answer, its disks mount);
// a staged rollout counts a host as healthy only once it passed.
//
// Why the host declares it, not the hub: a command the hub could send would
// give whoever controls the hub (or its admin socket) a way to run anything as
// root on every host. Here the command comes from the host's own
// configuration (the agent's JSON, written by the NixOS module), and the hub
// only learns its verdict. The hub gains no power it did not have.
//
// It runs as a settle() hook installed BEFORE the rollback guard, so a failed
// check turns the switch into a failure that the guard rolls back at once
// (docs/rollback.md), exactly like a switch-to-configuration that failed.
// Services may take a moment to come up: the command is retried every
// intervalMs until it exits 0 or timeoutMs has passed.
import path from 'node:path';
import type { JobEnd, JobStart } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import type { JobHooks, RebuildResult } from './manager.js';
import { runRebuild } from './runner.js';

export const HEALTH_KEYS = ['healthCommand', 'healthTimeoutMs', 'healthIntervalMs'] as const;
const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_INTERVAL_MS = 2_000;
/** Output lines of the last attempt shown in the job log; a check that prints a page is cut. */
const MAX_LINES = 40;

export interface HealthSettings { command: string[]; timeoutMs: number; intervalMs: number }

export function parseHealthSettings(o: Record<string, unknown>, bad: (msg: string) => never): HealthSettings | null {
  const command = o['healthCommand'] ?? null;
  const timeout = o['healthTimeoutMs'] ?? DEFAULT_TIMEOUT_MS;
  const interval = o['healthIntervalMs'] ?? DEFAULT_INTERVAL_MS;
  if (!Number.isInteger(timeout) || (timeout as number) < 1000 || (timeout as number) > 3_600_000) bad('"healthTimeoutMs" must be an integer in 1000..3600000');
  if (!Number.isInteger(interval) || (interval as number) < 100 || (interval as number) > 600_000) bad('"healthIntervalMs" must be an integer in 100..600000');
  if (command === null) return null;
  if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === 'string' && a !== '' && !a.includes('\0'))) {
    bad('"healthCommand" must be a non-empty argv array of non-empty strings, e.g. ["/run/current-system/sw/bin/systemctl", "is-system-running"], or null');
  }
  return { command: command as string[], timeoutMs: timeout as number, intervalMs: interval as number };
}

export class HealthCheck implements JobHooks {
  private readonly verdicts = new Map<string, 'passed' | 'failed'>();

  constructor(private readonly o: { settings: HealthSettings; host: string; log: Logger }) {}

  async settle(job: JobStart, result: RebuildResult, line: (data: string) => void): Promise<RebuildResult> {
    // Only what activates a new system now, and only if it got that far.
    if ((job.action !== 'switch' && job.action !== 'test') || result.outcome !== 'success') return result;
    const problem = await this.check(job, line);
    this.verdicts.set(job.jobId, problem ? 'failed' : 'passed');
    if (!problem) return result;
    this.o.log.warn({ jobId: job.jobId, problem }, 'health check failed');
    return { outcome: 'failure', exitCode: result.exitCode, reason: `health check failed: ${problem}` };
  }

  async finalize(job: JobStart): Promise<Partial<JobEnd>> {
    const v = this.verdicts.get(job.jobId);
    this.verdicts.delete(job.jobId);
    return v ? { health: v } : {};
  }

  /** null when it passed, else why not. */
  private async check(job: JobStart, line: (data: string) => void): Promise<string | null> {
    const { command, timeoutMs, intervalMs } = this.o.settings;
    const name = path.basename(command[0]!);
    const deadline = Date.now() + timeoutMs;
    const env = { ...process.env, BENTO_HOST: this.o.host, BENTO_JOB_ID: job.jobId, BENTO_ACTION: job.action } as Record<string, string>;
    line(`health: running ${command.join(' ')} (until it exits 0, at most ${Math.round(timeoutMs / 1000)} s)`);
    const t0 = Date.now();
    // Bounded by the deadline; at least one attempt.
    for (let attempt = 1; ; attempt++) {
      const out: string[] = [];
      const signal = AbortSignal.timeout(Math.max(100, deadline - Date.now()));
      const r = await runRebuild({ argv: command, env, signal, onLine: (_s, d) => { if (out.length < MAX_LINES) out.push(d); } });
      if (!r.spawnError && r.exitCode === 0) {
        line(`health: passed after ${attempt} attempt${attempt > 1 ? 's' : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        return null;
      }
      const why = r.spawnError ? `cannot run ${command[0]}: ${r.spawnError.split('\n')[0]}`
        : signal.aborted ? `${name} did not finish before the ${Math.round(timeoutMs / 1000)} s deadline`
          : `${name} ${r.signal ? `was killed by ${r.signal}` : `exited with status ${r.exitCode}`}`;
      const wait = Math.min(intervalMs, deadline - Date.now());
      if (r.spawnError || wait <= 0) {
        for (const l of out) line(`health: ${l}`);
        return `${why} (attempt ${attempt}, ${Math.round((Date.now() - t0) / 1000)} s after the ${job.action})`;
      }
      line(`health: attempt ${attempt}: ${why}; trying again in ${(wait / 1000).toFixed(1)} s`);
      await new Promise((res) => setTimeout(res, wait));
    }
  }
}

/** Install BEFORE the rollback guard: its verdict must reach the guard's settle(). */
export function installHealthCheck(agent: { addJobHooks(h: JobHooks): void }, o: { settings: HealthSettings | null; host: string; log: Logger }): HealthCheck | null {
  if (!o.settings) return null;
  const hook = new HealthCheck({ ...o, settings: o.settings });
  agent.addJobHooks(hook);
  return hook;
}
