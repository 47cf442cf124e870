// rebootMethod "kexec": boot the new system's kernel without going through
// the firmware and the boot loader, the way NixOS's own prepare-kexec unit
// does it:
//   kexec --load SYS/kernel --initrd=SYS/initrd --append="$(cat SYS/kernel-params) init=SYS/init"
//   systemctl kexec
// (init= last, so it wins over any init= in kernel-params, as in NixOS).
// Anything missing (no kexec binary, no kernel-params, a load the kernel
// refuses, systemctl failing) is a reason to fall back to a plain reboot;
// the caller logs the reason and runs rebootCommand.
import { spawn } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface KexecInputs {
  kernel: string;
  initrd: string;
  init: string;
  /** Contents of SYS/kernel-params (whitespace-normalised). */
  kernelParams: string;
}

export interface KexecPlan { load: string[]; exec: string[] }

/** The two commands for a kexec into one system (pure; unit-tested against a real fixture system). */
export function kexecArgv(i: KexecInputs): KexecPlan {
  const append = [i.kernelParams, `init=${i.init}`].filter((s) => s !== '').join(' ');
  return { load: ['kexec', '--load', i.kernel, `--initrd=${i.initrd}`, `--append=${append}`], exec: ['systemctl', 'kexec'] };
}

/** Read SYS/kernel, initrd, init and kernel-params; a string says what is missing. */
export async function readKexecInputs(system: string): Promise<KexecInputs | string> {
  const p = (name: string): string => path.join(system, name);
  for (const name of ['kernel', 'initrd', 'init']) {
    if (!(await access(p(name)).then(() => true, () => false))) return `${p(name)} does not exist`;
  }
  const params = await readFile(p('kernel-params'), 'utf8').catch(() => null);
  if (params === null) return `${p('kernel-params')} cannot be read`;
  return { kernel: p('kernel'), initrd: p('initrd'), init: p('init'), kernelParams: params.replace(/\s+/g, ' ').trim() };
}

interface Ran { code: number | null; spawnError: string | null; stderr: string }

function run(argv: string[], env: Record<string, string>): Promise<Ran> {
  return new Promise((resolve) => {
    let stderr = '';
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ code: null, spawnError: err.code === 'ENOENT' ? 'not installed' : err.message, stderr }));
    child.on('close', (code) => resolve({ code, spawnError: null, stderr }));
  });
}

const tail = (s: string): string => s.trim().split('\n').slice(-2).join(' | ');

/**
 * Load SYSTEM's kernel for kexec. null when loaded (then `plan.exec` boots
 * it), else why not. Never reboots by itself.
 */
export async function kexecLoad(system: string, env: Record<string, string>): Promise<{ plan: KexecPlan } | { problem: string }> {
  const inputs = await readKexecInputs(system);
  if (typeof inputs === 'string') return { problem: inputs };
  const plan = kexecArgv(inputs);
  const r = await run(plan.load, env);
  if (r.spawnError) return { problem: `kexec ${r.spawnError === 'not installed' ? 'is not installed (kexec-tools)' : `cannot run: ${r.spawnError}`}` };
  if (r.code !== 0) return { problem: `kexec --load exited with status ${r.code}${r.stderr ? `: ${tail(r.stderr)}` : ''}` };
  return { plan };
}

/** `systemctl kexec`: null when it was accepted, else why not. */
export async function kexecExec(plan: KexecPlan, env: Record<string, string>): Promise<string | null> {
  const r = await run(plan.exec, env);
  if (r.spawnError) return `${plan.exec.join(' ')}: ${r.spawnError}`;
  if (r.code !== 0) return `${plan.exec.join(' ')} exited with status ${r.code}${r.stderr ? `: ${tail(r.stderr)}` : ''}`;
  return null;
}
