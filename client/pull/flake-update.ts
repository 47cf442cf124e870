// Upstream's SELF_UPDATE on the agent: run flakeUpdateCommand in a copy of
// the installed configuration; if flake.lock changed, install the copy as a
// local version (its base stays the published hash) and report 'updated' so
// the caller rebuilds. No flake.lock, or an unchanged one: nothing happens.
// The caller (ConfigPuller.flakeUpdate) runs this in the pull's single chain.
import { spawn } from 'node:child_process';
import { chmod, cp, readFile, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { hashTree } from '../../common/platform/tree-hash.js';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { ClientConfig } from '../config.js';
import type { PullStore } from './store.js';

export type FlakeUpdateResult = 'no-config' | 'no-flake' | 'unchanged' | 'updated';

export async function updateFlakeInputs(store: PullStore, config: ClientConfig, log: Logger): Promise<FlakeUpdateResult> {
  const installed = await store.linked();
  if (!installed) return 'no-config';
  const src = store.versionPath(installed);
  const lock = await readFile(path.join(src, 'flake.lock')).catch(() => null);
  if (!lock) return 'no-flake';
  const staging = store.stagingPath();
  try {
    await cp(src, staging, { recursive: true });
    await setWritable(staging, true);
    const argv = config.pull.flakeUpdateCommand;
    const r = await runIn(argv, staging, { ...process.env, ...config.rebuildEnv }, 600_000);
    if (r.code !== 0) throw new BentoError('JOB_FAILED', `${argv.join(' ')} failed (${r.code ?? r.error}): ${r.output.trimEnd().split('\n').slice(-3).join(' | ')}`);
    const next = await readFile(path.join(staging, 'flake.lock')).catch(() => null);
    await store.saveState({ lastFlakeUpdateAt: new Date().toISOString() });
    if (!next || next.equals(lock)) return 'unchanged';
    await setWritable(staging, false);
    const t = await hashTree(staging);
    await store.install(staging, t.hash);
    await store.swap(t.hash);
    await store.saveState({ installed: t.hash });
    log.info({ tree: t.hash }, 'flake inputs updated: flake.lock changed');
    return 'updated';
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function setWritable(dir: string, on: boolean): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await setWritable(p, on);
    else if (e.isFile()) {
      const exec = ((await stat(p)).mode & 0o111) !== 0;
      await chmod(p, on ? (exec ? 0o755 : 0o644) : (exec ? 0o555 : 0o444));
    }
  }
}

/** Run argv in cwd; output (both streams, capped) for the error message. */
function runIn(argv: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string; error: string | null }> {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const add = (b: Buffer): void => { output = (output + b.toString('utf8')).slice(-64 * 1024); };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); resolve({ code: null, output, error: err.message }); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, output, error: null }); });
  });
}
