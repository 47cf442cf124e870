// The machine-id guard: a host refuses a system built for another machine.
//
// Where the pinned value lives: the host's NixOS configuration sets
// services.bento.client.machineId; the module writes it into every system
// built from that configuration, as SYSTEM/etc/bento/machine-id (an
// environment.etc entry, so it is part of the system's store path), and into
// the agent's config as "machineId", which turns the guard on.
//
// When it is compared: after the new system is built (or, for a prebuilt
// job, realised) and BEFORE anything changes: before `nix-env --set` moves the
// system profile (the boot default) and before switch-to-configuration. A
// pinned agent therefore runs a switch/boot/test rebuild in two steps: the
// rebuild command's `build`, then the check, then the steps nixos-rebuild
// itself takes after its build, on exactly the system that was checked
// (runPrebuilt), so nothing built later (a pull changing the configuration
// meanwhile) can slip past the check.
//
// What is refused (MACHINE_ID_MISMATCH, job failure, nothing activated): a
// system pinned to another machine id, a system with no pin at all (a pinned
// host only takes pinned systems: a mixed-up publish of an unpinned
// configuration must not switch it either), and any case where this host's
// own id cannot be read (fail closed). build, dry-build and dry-activate
// change nothing and are not checked.
import { mkdir, readFile, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Action } from '../../common/protocol/messages.js';
import { BentoError } from '../../common/protocol/errors.js';
import { isStorePath } from '../../common/protocol/store-path.js';
import { rebuildArgv, type RebuildSpec } from './argv.js';
import { runRebuild, type RunResult } from './runner.js';
import { runPrebuilt } from './prebuilt.js';

/** Where a system carries its pin, relative to its store path. */
export const PIN_FILE = 'etc/bento/machine-id';
export const MACHINE_ID_KEYS = ['machineId', 'machineIdFile'] as const;
const MACHINE_ID = /^[0-9a-f]{32}$/;

export interface MachinePin {
  /** This host's pinned id (its config's machineId); null: no guard. */
  machineId: string | null;
  /** This host's actual id; default /etc/machine-id. */
  machineIdFile: string;
}

export function parseMachinePin(o: Record<string, unknown>, bad: (msg: string) => never): MachinePin {
  const id = o['machineId'] ?? null;
  if (id !== null && (typeof id !== 'string' || !MACHINE_ID.test(id))) {
    bad('"machineId" must be this host\'s machine id, 32 lower-case hex digits (`cat /etc/machine-id`), or null');
  }
  const file = o['machineIdFile'] ?? '/etc/machine-id';
  if (typeof file !== 'string' || !file.startsWith('/')) bad('"machineIdFile" must be an absolute path');
  return { machineId: id as string | null, machineIdFile: file as string };
}

/** The actions the guard stands in front of: they change the running system or the boot default. */
export function isPinnedAction(action: Action): boolean {
  return action === 'switch' || action === 'boot' || action === 'test';
}

function refusal(message: string): string {
  const e = new BentoError('MACHINE_ID_MISMATCH', `${message}; nothing was activated`);
  return `${e.code}: ${e.message}`;
}

/** null when `system` is pinned to this machine, else the job's failure reason (MACHINE_ID_MISMATCH: ...). */
export async function checkSystemPin(system: string, machineIdFile: string): Promise<string | null> {
  const here = await readFile(machineIdFile, 'utf8').catch((err: Error) => err);
  if (here instanceof Error || !MACHINE_ID.test(here.trim())) {
    const why = here instanceof Error ? here.message : 'not 32 hex digits';
    return refusal(`cannot read this host's machine id from ${machineIdFile} (${why}), so ${system} cannot be checked against it`);
  }
  const own = here.trim();
  const pinFile = path.join(system, PIN_FILE);
  const pinned = await readFile(pinFile, 'utf8').then((s) => s.trim(), (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : err));
  if (pinned instanceof Error) return refusal(`cannot read ${pinFile}: ${pinned.message}`);
  if (pinned === null) {
    return refusal(`${system} pins no machine id (no ${PIN_FILE}), and this host only takes systems pinned to it (${own}); `
      + `set services.bento.client.machineId = "${own}" in this host's configuration`);
  }
  if (pinned !== own) {
    return refusal(`${system} was built for machine ${pinned} (its ${PIN_FILE}), but this host is ${own} (${machineIdFile}): `
      + 'this is another machine\'s configuration; publish this host\'s own, or correct services.bento.client.machineId in it');
  }
  return null;
}

export interface PinnedRebuild {
  spec: RebuildSpec;
  action: Action;
  env: Record<string, string>;
  /** The scratch directory the build runs in (its ./result), removed afterwards. */
  scratch: string;
  systemProfile: string;
  machineIdFile: string;
  onLine(stream: 'stdout' | 'stderr', data: string): void;
  say(line: string): void;
}

/** Build, check the built system's pin, then activate exactly that system. */
export async function runPinnedRebuild(o: PinnedRebuild): Promise<RunResult & { reason?: string }> {
  const argv = rebuildArgv(o.spec, 'build');
  await rm(o.scratch, { recursive: true, force: true });
  await mkdir(o.scratch, { recursive: true });
  try {
    o.say(`machine-id guard: building first, to check the new system's pin before ${o.action}`);
    o.say(`$ ${argv.join(' ')}`);
    let lastOut = '';
    const built = await runRebuild({
      argv, env: o.env, cwd: o.scratch,
      onLine: (stream, data) => { if (stream === 'stdout' && data.trim()) lastOut = data.trim(); o.onLine(stream, data); },
    });
    if (built.spawnError) return { ...built, reason: `cannot run ${argv[0]}: ${built.spawnError}` };
    if (built.exitCode !== 0) {
      return { ...built, reason: `${path.basename(argv[0]!)} build ${built.signal ? `was killed by ${built.signal}` : `exited with status ${built.exitCode}`}` };
    }
    // nixos-rebuild leaves ./result; a command that prints the path instead works too.
    const system = await realpath(path.join(o.scratch, 'result')).catch(() => (isStorePath(lastOut) ? lastOut : null));
    if (!system) {
      return { exitCode: 1, signal: null, spawnError: null, reason: `${argv.join(' ')} succeeded but named no system (no ./result, no store path on its last output line); with machineId set the rebuild command must support "build" like nixos-rebuild` };
    }
    const refused = await checkSystemPin(system, o.machineIdFile);
    if (refused) return { exitCode: 1, signal: null, spawnError: null, reason: refused };
    o.say(`machine-id guard: ${system} is pinned to this machine; activating exactly it`);
    return await runPrebuilt({ spec: { cacheUrl: null, systemProfile: o.systemProfile }, storePath: system, action: o.action, env: o.env, onLine: o.onLine, say: o.say, label: 'machine-id guard' });
  } finally {
    await rm(o.scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}
