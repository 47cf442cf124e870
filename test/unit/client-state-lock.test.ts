// The agent's state-directory lock (client/state-lock.ts) with real processes
// and the real flock(1): exclusive, named in the refusal, gone when its
// holder is killed with SIGKILL, and not kept alive by a process the holder
// spawned (a rebuild that outlives the agent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockStateDir, LOCK_FILE } from '../../client/state-lock.js';
import { BentoError } from '../../common/protocol/errors.js';
import { processAlive } from '../../common/platform/process.js';

const LOCK_MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../client/state-lock.js');

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bento-lock-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function refusal(err: unknown, dir: string, pid: number): boolean {
  assert.ok(err instanceof BentoError, String(err));
  assert.equal(err.code, 'STATE_DIR_LOCKED');
  assert.equal(err.exitCode, 6);
  assert.ok(err.message.includes(`state directory ${dir} is in use by PID ${pid}`), err.message);
  return true;
}

test('one holder at a time, named in the refusal; free again after release', async () => {
  await withDir(async (dir) => {
    const state = path.join(dir, 'state');
    const a = await lockStateDir({ stateDir: state, host: 'web1' });
    await assert.rejects(lockStateDir({ stateDir: state, host: 'web2' }), (e) => refusal(e, state, process.pid));
    a.release();
    a.release(); // idempotent
    const b = await lockStateDir({ stateDir: state, host: 'web2' });
    b.release();
  });
});

test('a holder killed with SIGKILL leaves no stale lock, even while a process it spawned lives on', async () => {
  await withDir(async (dir) => {
    const state = path.join(dir, 'state');
    // A holder that also starts a long-lived child, as the agent starts nixos-rebuild.
    const script = `
      import { spawn } from 'node:child_process';
      const { lockStateDir } = await import(${JSON.stringify(LOCK_MODULE)});
      await lockStateDir({ stateDir: ${JSON.stringify(state)}, host: 'web1' });
      const c = spawn('sleep', ['60'], { stdio: 'ignore', detached: true });
      c.unref();
      process.stdout.write(c.pid + '\\n');
      setInterval(() => {}, 1000);
    `;
    const holder = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let grandchild = 0;
    try {
      grandchild = await new Promise<number>((resolve, reject) => {
        let out = '';
        holder.stdout!.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('\n')) resolve(Number(out.trim())); });
        holder.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
        setTimeout(() => reject(new Error('holder did not lock within 10 s')), 10_000).unref();
      });
      await assert.rejects(lockStateDir({ stateDir: state, host: 'web2' }), (e) => refusal(e, state, holder.pid!));
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
      assert.ok(processAlive(grandchild), 'the spawned process outlives its parent');
      const mine = await lockStateDir({ stateDir: state, host: 'web2' });
      mine.release();
    } finally {
      holder.kill('SIGKILL');
      if (grandchild) try { process.kill(grandchild, 'SIGKILL'); } catch { /* gone */ }
    }
  });
});

test('a lock file that is a symlink is refused, and a missing flock(1) is a clear error', async () => {
  await withDir(async (dir) => {
    const elsewhere = path.join(dir, 'elsewhere');
    await writeFile(elsewhere, 'keep me');
    const state = path.join(dir, 'state');
    await lockStateDir({ stateDir: state, host: 'web1' }).then((l) => l.release());
    await rm(path.join(state, LOCK_FILE));
    await symlink(elsewhere, path.join(state, LOCK_FILE));
    await assert.rejects(lockStateDir({ stateDir: state, host: 'web1' }), (e) => e instanceof BentoError && e.code === 'CONFIG_INVALID' && e.message.includes(LOCK_FILE));

    const other = path.join(dir, 'other');
    await assert.rejects(lockStateDir({ stateDir: other, host: 'web1', flock: [path.join(dir, 'no-such-flock')] }),
      (e) => e instanceof BentoError && e.code === 'CONFIG_INVALID' && /flock \(util-linux\) not found/.test(e.message));
  });
});
