// postSwitchCommand: an operator's command run after every switch, boot or
// test job (notify a chat, record the deployment, poke a monitor), with the
// job's facts in BENTO_* variables.
//
// It runs as the LAST settle() hook (installed after the rollback guard and
// the reboot hooks), so it sees the final outcome (a rolled-back switch says
// so) and runs before the result is stored and before a reboot the job asked
// for; the job's result waits for it, at most timeoutMs. Its output is part of
// the job's log. Its failure is logged and printed, never the job's: the
// system did what the outcome says whatever a notifier thinks of it.
// A switch decided after an agent restart (the guard's leftover record) has
// no settle() and so no hook run.
import path from 'node:path';
import type { JobStart } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import type { JobHooks, RebuildResult } from './manager.js';
import { runRebuild } from './runner.js';
import { currentSystemPath, profileGeneration } from '../system.js';

export const POST_SWITCH_KEYS = ['postSwitchCommand', 'postSwitchTimeoutMs'] as const;
const DEFAULT_TIMEOUT_MS = 60_000;

export interface PostSwitchSettings { command: string[]; timeoutMs: number }

export function parsePostSwitchSettings(o: Record<string, unknown>, bad: (msg: string) => never): PostSwitchSettings | null {
  const command = o['postSwitchCommand'] ?? null;
  const timeout = o['postSwitchTimeoutMs'] ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || (timeout as number) < 1000 || (timeout as number) > 3_600_000) bad('"postSwitchTimeoutMs" must be an integer in 1000..3600000');
  if (command === null) return null;
  if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === 'string' && a !== '' && !a.includes('\0'))) {
    bad('"postSwitchCommand" must be a non-empty argv array of non-empty strings, e.g. ["/run/current-system/sw/bin/logger", "-t", "bento"], or null');
  }
  return { command: command as string[], timeoutMs: timeout as number };
}

export interface PostSwitchOptions {
  settings: PostSwitchSettings;
  host: string;
  currentSystem: string;
  systemProfile: string;
  log: Logger;
}

/** The variables the command gets (documented in docs/nixos.md). */
export interface PostSwitchFacts {
  host: string; job: JobStart; result: RebuildResult;
  generation: number | null; system: string | null; previous: string | null;
}

export function postSwitchEnv(f: PostSwitchFacts): Record<string, string> {
  return {
    BENTO_HOST: f.host,
    BENTO_JOB_ID: f.job.jobId,
    BENTO_ACTION: f.job.action,
    BENTO_OUTCOME: f.result.outcome,
    BENTO_EXIT_CODE: f.result.exitCode === null ? '' : String(f.result.exitCode),
    BENTO_REASON: f.result.reason ?? '',
    BENTO_GENERATION: f.generation === null ? '' : String(f.generation),
    BENTO_STORE_PATH: f.system ?? '',
    BENTO_PREVIOUS_STORE_PATH: f.previous ?? '',
  };
}

export class PostSwitchHook implements JobHooks {
  private readonly before = new Map<string, string | null>();

  constructor(private readonly o: PostSwitchOptions) {}

  private applies(job: JobStart): boolean {
    return job.action === 'switch' || job.action === 'boot' || job.action === 'test';
  }

  async prepare(job: JobStart): Promise<void> {
    if (this.applies(job)) this.before.set(job.jobId, await currentSystemPath(this.o.currentSystem));
  }

  async settle(job: JobStart, result: RebuildResult, line: (data: string) => void): Promise<RebuildResult> {
    if (!this.before.has(job.jobId)) return result;
    const previous = this.before.get(job.jobId) ?? null;
    this.before.delete(job.jobId);
    const { command, timeoutMs } = this.o.settings;
    // boot changes what the next boot runs (the profile), the others what runs now.
    const system = await currentSystemPath(job.action === 'boot' ? this.o.systemProfile : this.o.currentSystem);
    const env = postSwitchEnv({ host: this.o.host, job, result, generation: await profileGeneration(this.o.systemProfile), system, previous });
    const name = path.basename(command[0]!);
    line(`post-switch: running ${command.join(' ')} (outcome ${result.outcome})`);
    const timer = AbortSignal.timeout(timeoutMs);
    const t0 = Date.now();
    const r = await runRebuild({
      argv: command, env: { ...process.env, ...env } as Record<string, string>, signal: timer,
      onLine: (_stream, data) => line(`post-switch: ${data}`),
    });
    const ms = Date.now() - t0;
    const problem = r.spawnError ? `cannot run ${command[0]}: ${r.spawnError}`
      : timer.aborted ? `${name} did not finish within ${timeoutMs} ms and was stopped`
        : r.exitCode !== 0 ? `${name} ${r.signal ? `was killed by ${r.signal}` : `exited with status ${r.exitCode}`}` : null;
    if (problem) {
      line(`post-switch: ${problem} (the job's outcome stays ${result.outcome})`);
      this.o.log.warn({ jobId: job.jobId, command, problem }, 'post-switch command failed');
    } else {
      line(`post-switch: done in ${ms} ms`);
      this.o.log.info({ jobId: job.jobId, command, durationMs: ms }, 'post-switch command ran');
    }
    return result;
  }
}

/** Install after every other settle() hook (the guard's, the reboot's): it must see the final verdict. */
export function installPostSwitch(
  agent: { addJobHooks(h: JobHooks): void },
  o: Omit<PostSwitchOptions, 'settings'> & { settings: PostSwitchSettings | null },
): PostSwitchHook | null {
  if (!o.settings) return null;
  const hook = new PostSwitchHook({ ...o, settings: o.settings });
  agent.addJobHooks(hook);
  return hook;
}
