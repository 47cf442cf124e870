// A job with a storePath (`bento-hub trigger --prebuilt`): the hub already
// built this host's system, so instead of `nixos-rebuild ACTION` the agent
// takes the steps nixos-rebuild takes after its build, on that exact path:
//   1. realise it: `nix copy --from http://127.0.0.1:PORT PATH` through the
//      agent's own cache tunnel when "cache" is configured (signatures are
//      checked against the host's trusted-public-keys), else
//      `nix-store --realise PATH` from the host's configured substituters;
//   2. switch, boot: `nix-env -p SYSTEMPROFILE --set PATH` (a new generation);
//   3. switch, boot, test, dry-activate: `PATH/bin/switch-to-configuration ACTION`.
// `build` stops after step 1 (a pre-fetch). The job hooks (rollback guard,
// reboot, pull) wrap this exactly as they wrap nixos-rebuild: the manager
// calls runPrebuilt where it would call runRebuild.
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Action } from '../../common/protocol/messages.js';
import { isStorePath } from '../../common/protocol/store-path.js';
import { BentoError } from '../../common/protocol/errors.js';
import { runRebuild, type RunResult } from './runner.js';

export interface PrebuiltSpec {
  /** The agent's cache tunnel (http://127.0.0.1:cache.localPort), or null: the host's own substituters. */
  cacheUrl: string | null;
  systemProfile: string;
}

export interface Step { what: string; argv: string[] }

/** The commands for one prebuilt job, in order (pure; unit-tested). */
export function prebuiltSteps(spec: PrebuiltSpec, storePath: string, action: Action): Step[] {
  // The wire schema already refused anything else; this keeps the argv safe for any other caller.
  if (!isStorePath(storePath)) throw new BentoError('PROTOCOL_MALFORMED', `not a store path: ${JSON.stringify(String(storePath).slice(0, 80))}`);
  const steps: Step[] = [spec.cacheUrl
    ? { what: `substitute ${storePath} from the hub cache`, argv: ['nix', '--extra-experimental-features', 'nix-command', 'copy', '--from', spec.cacheUrl, storePath] }
    : { what: `realise ${storePath} from this host's substituters`, argv: ['nix-store', '--realise', storePath] }];
  if (action === 'build') return steps;
  if (action === 'switch' || action === 'boot') {
    steps.push({ what: `set the system profile to ${storePath}`, argv: ['nix-env', '-p', spec.systemProfile, '--set', storePath] });
  }
  steps.push({ what: `${action} ${storePath}`, argv: [path.join(storePath, 'bin', 'switch-to-configuration'), action] });
  return steps;
}

export interface PrebuiltRun {
  spec: PrebuiltSpec;
  storePath: string;
  action: Action;
  env: Record<string, string>;
  onLine(stream: 'stdout' | 'stderr', data: string): void;
  /** Bento's own progress lines. */
  say(line: string): void;
  /** Checked once the path is realised, before anything changes; a string refuses it (the job's reason). */
  verify?(storePath: string): Promise<string | null>;
  /** Prefix of the progress lines; default "prebuilt". */
  label?: string;
}

/** Run the steps, streaming their output; stops at the first failure with a reason naming the step. */
export async function runPrebuilt(o: PrebuiltRun): Promise<RunResult & { reason?: string }> {
  const steps = prebuiltSteps(o.spec, o.storePath, o.action);
  const label = o.label ?? 'prebuilt';
  let last: RunResult = { exitCode: 0, signal: null, spawnError: null };
  for (const [i, step] of steps.entries()) {
    if (i === 1) {
      // Realised, but is it a NixOS system? Never run nix-env --set on something that cannot be activated.
      const stc = path.join(o.storePath, 'bin', 'switch-to-configuration');
      if (!(await access(stc).then(() => true, () => false))) {
        return { exitCode: 1, signal: null, spawnError: null, reason: `${o.storePath} is not a NixOS system (no bin/switch-to-configuration); nothing was changed` };
      }
      const refused = await o.verify?.(o.storePath);
      if (refused) return { exitCode: 1, signal: null, spawnError: null, reason: refused };
    }
    o.say(`${label}: ${step.what}`);
    o.say(`$ ${step.argv.join(' ')}`);
    const t0 = Date.now();
    last = await runRebuild({ argv: step.argv, env: o.env, onLine: o.onLine });
    const ms = Date.now() - t0;
    if (last.spawnError) return { ...last, reason: `cannot ${step.what}: cannot run ${step.argv[0]}: ${last.spawnError}` };
    if (last.exitCode !== 0) {
      const how = last.signal ? `was killed by ${last.signal}` : `exited with status ${last.exitCode}`;
      return { ...last, reason: `cannot ${step.what}: ${path.basename(step.argv[0]!)} ${how}` };
    }
    o.say(`${label}: ${i === 0 ? 'realised' : 'done'} in ${ms} ms`);
  }
  return last;
}
