// The fleet directory's advisory lock (hub/fleet/lock.ts), which orders the
// CLI's read-modify-write edits of registry.json and other fleet files.
// Found by running `add-host` side by side (the test fixtures' addHosts()):
// a registration was lost. The lock file was created empty and its owner's
// pid written after: a second process that found it in that moment read no
// pid, judged it stale, removed it and took the lock too. On the old code
// this test kept 16 of 60 increments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

test('processes racing for the lock: none lost; a lock left by a dead process is taken over', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-lock-'));
  try {
    const file = path.join(dir, 'counter');
    const lockFile = path.join(dir, 'counter.lock');
    await writeFile(file, '0');
    // A lock whose owner is gone (a pid no process has): the first taker breaks it. Each process waits up
    // to 2 min for its turn: what is tested is that no increment is lost, not how fast a turn comes (a
    // 10 s wait ran out once on a machine running three test files and more).
    await writeFile(lockFile, '2147483646');
    const lockUrl = new URL('../../hub/fleet/lock.js', import.meta.url).href;
    const script = `const { withLock } = await import(${JSON.stringify(lockUrl)}); const fs = await import('node:fs/promises');
      for (let i = 0; i < 10; i++) await withLock(${JSON.stringify(lockFile)}, async () => {
        const n = Number(await fs.readFile(${JSON.stringify(file)}, 'utf8')); await new Promise((r) => setTimeout(r, 1)); await fs.writeFile(${JSON.stringify(file)}, String(n + 1)); }, 120_000);`;
    const codes = await Promise.all(Array.from({ length: 6 }, () => new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit', cwd: path.dirname(fileURLToPath(import.meta.url)) });
      child.on('exit', resolve);
    })));
    assert.deepEqual(codes, [0, 0, 0, 0, 0, 0]);
    assert.equal(Number(await readFile(file, 'utf8')), 60, 'every increment of every process kept');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
