// Re-activate one exact store path, the way NixOS's own rollback does:
//   switch: nix-env -p PROFILE --set PATH   (a new generation pointing back)
//           PATH/bin/switch-to-configuration switch
//   test:   PATH/bin/switch-to-configuration test   (the profile is left alone)
// nix-env is taken from PATH/sw/bin when the recorded system has one (the
// known-good system's own tools), else from the rebuild environment's PATH.
import { access, realpath } from 'node:fs/promises';
import path from 'node:path';
import { runRebuild } from '../jobs/runner.js';
import type { GuardedAction } from './state.js';

export interface ReactivateOptions {
  storePath: string;
  action: GuardedAction;
  profile: string;
  currentSystem: string;
  env: Record<string, string>;
  /** Progress and command output, one line each. */
  say(line: string): void;
}

export interface ReactivateResult { ok: boolean; problem?: string; newGenerationCreated: boolean }

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
}

async function run(argv: string[], env: Record<string, string>, say: (l: string) => void): Promise<string | null> {
  say(`$ ${argv.join(' ')}`);
  const r = await runRebuild({ argv, env, onLine: (_s, l) => say(l) });
  if (r.spawnError) return `cannot run ${argv[0]}: ${r.spawnError}`;
  if (r.exitCode !== 0) return `${path.basename(argv[0]!)} ${r.signal ? `was killed by ${r.signal}` : `exited with status ${r.exitCode}`}`;
  return null;
}

export async function reactivate(o: ReactivateOptions): Promise<ReactivateResult> {
  const stc = path.join(o.storePath, 'bin', 'switch-to-configuration');
  if (!(await exists(stc))) return { ok: false, problem: `${stc} does not exist (was the path garbage-collected?)`, newGenerationCreated: false };
  let newGenerationCreated = false;
  if (o.action === 'switch') {
    const inProfile = await realpath(o.profile).catch(() => null);
    if (inProfile !== o.storePath) {
      const own = path.join(o.storePath, 'sw', 'bin', 'nix-env');
      const nixEnv = (await exists(own)) ? own : 'nix-env';
      const problem = await run([nixEnv, '-p', o.profile, '--set', o.storePath], o.env, o.say);
      if (problem) return { ok: false, problem: `setting the system profile back failed: ${problem}`, newGenerationCreated };
      newGenerationCreated = true;
    }
  }
  const problem = await run([stc, o.action], o.env, o.say);
  const now = await realpath(o.currentSystem).catch(() => null);
  if (problem) {
    // switch-to-configuration can exit non-zero (units failing to restart)
    // after it has repointed the system; what counts is what runs now.
    if (now === o.storePath) {
      o.say(`warning: ${problem}, but ${o.storePath} is active again`);
      return { ok: true, newGenerationCreated };
    }
    return { ok: false, problem: `re-activation failed: ${problem}`, newGenerationCreated };
  }
  if (now !== o.storePath) return { ok: false, problem: `after re-activation the current system is ${now ?? 'missing'}, not ${o.storePath}`, newGenerationCreated };
  return { ok: true, newGenerationCreated };
}
