// The rollback guard when the disk is full right after the switch (the
// switch may well have filled it): the confirmation window cannot be
// recorded, and the guard decides all the same, from memory: it keeps a
// switch the hub confirms and rolls back one it does not, and leaves no
// record behind. Before (found by review), the job failed with the write's
// ENOSPC, nothing was confirmed or rolled back, and a `switching` record
// stayed for a restart days later to decide against a stale system.
// A real size-limited tmpfs under the agent's state directory, filled to
// ENOSPC; real switch-to-configuration scripts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, open, readlink, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { RollbackGuard, type GuardedAgent } from '../../client/rollback/guard.js';
import { readGuard, guardFile } from '../../client/rollback/state.js';
import { Outbox } from '../../client/jobs/outbox.js';
import type { JobManager } from '../../client/jobs/manager.js';
import type { JobStart } from '../../common/protocol/messages.js';
import { silentLogger } from '../../common/platform/log.js';

const run = promisify(execFile);
const skip = process.getuid?.() !== 0 ? 'mounting a size-limited tmpfs needs root' : false;
let dir = '';
let stateDir = '';
let mounted = false;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'bento-guard-full-'));
  stateDir = path.join(dir, 'state');
  await mkdir(stateDir);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'bento-test-guard-full', stateDir]);
  mounted = true;
});
after(async () => {
  if (mounted) await run('umount', [stateDir]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Fill the state tmpfs until a write fails with ENOSPC; returns the filler's path. */
async function fill(): Promise<string> {
  const p = path.join(stateDir, 'filler');
  const f = await open(p, 'w');
  try {
    for (let i = 0; i < 1024; i++) await f.write(Buffer.alloc(64 * 1024));
    throw new Error('the tmpfs did not fill');
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    await f.close();
  }
  return p;
}

/** Two "systems" whose switch-to-configuration points current-system at themselves; current-system at GOOD. */
async function systems(name: string): Promise<{ currentSystem: string; good: string; next: string }> {
  const base = path.join(dir, name);
  const currentSystem = path.join(base, 'current-system');
  const good = path.join(base, 'good-system');
  const next = path.join(base, 'next-system');
  for (const s of [good, next]) {
    await mkdir(path.join(s, 'bin'), { recursive: true });
    const stc = path.join(s, 'bin', 'switch-to-configuration');
    await writeFile(stc, `#!/bin/sh\nln -sfn ${s} ${currentSystem}\n`);
    await chmod(stc, 0o755);
  }
  await symlink(good, currentSystem);
  return { currentSystem, good, next };
}

async function guarded(o: { name: string; hubAnswers: boolean }): Promise<{ outcome: string; reason?: string; lines: string[]; current: string; good: string; next: string }> {
  const { currentSystem, good, next } = await systems(o.name);
  const outbox = new Outbox(stateDir);
  await outbox.init();
  const agent: GuardedAgent = { freshConnection: async () => o.hubAnswers, connected: true, jobs: { outbox } as unknown as JobManager };
  const guard = new RollbackGuard({ agent, stateDir, currentSystem, systemProfile: path.join(dir, o.name, 'profile'), env: {}, timeoutMs: 3000, enabled: true, log: silentLogger() });
  const job: JobStart = { type: 'job.start', jobId: `${o.name}guardjob01`, action: 'test' };
  const lines: string[] = [];
  const line = (l: string): void => { lines.push(l); };
  await guard.prepare(job, line);
  assert.equal((await readGuard(stateDir))?.phase, 'switching', 'recorded before the switch');
  // The switch: the system changes, and the disk is full afterwards.
  await run(path.join(next, 'bin', 'switch-to-configuration'), ['test']);
  const filler = await fill();
  try {
    const v = await guard.settle(job, { outcome: 'success', exitCode: 0 }, line);
    return { ...v, lines, current: await readlink(currentSystem), good, next };
  } finally {
    await rm(filler);
  }
}

test('disk full after the switch, the hub answers: the switch is kept, and no record is left', { skip }, async () => {
  const r = await guarded({ name: 'kept', hubAnswers: true });
  assert.equal(r.outcome, 'success', `${r.reason} (before: the job failed with ENOSPC)`);
  assert.ok(r.lines.some((l) => /cannot record the confirmation window on disk \(.*ENOSPC.*\); deciding now all the same/.test(l)), r.lines.join('\n'));
  assert.equal(r.current, r.next);
  assert.equal(await readGuard(stateDir), null, 'no switching record left for a later restart');
  assert.deepEqual((await readdir(stateDir)).filter((n) => n === path.basename(guardFile(stateDir))), []);
});

test('disk full after the switch, the hub does not answer: rolled back to the recorded system, and no record is left', { skip }, async () => {
  const r = await guarded({ name: 'back', hubAnswers: false });
  assert.equal(r.outcome, 'rolled-back', r.reason);
  assert.equal(r.current, r.good, 're-activated exactly the recorded system');
  assert.equal(await readGuard(stateDir), null);
});
