// The restart-on-change watch (client/restart/watch.ts) on real files: a
// changed config file or a re-pointed package symlink restarts the agent, but
// only when it is idle and (within 5 s) every result is acknowledged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RestartWatch, fingerprint } from '../../client/restart/watch.js';
import { silentLogger } from '../../common/platform/log.js';
import { tmpDir, waitFor, sleep } from '../helpers/proc.js';

test('fingerprints: content for files, target for links, "missing" for nothing', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const f = path.join(dir, 'client.json');
    await writeFile(f, '{"a":1}');
    const a = await fingerprint(f);
    await writeFile(f, '{"a":2}');
    assert.notEqual(await fingerprint(f), a);
    await mkdir(path.join(dir, 'v1'));
    await mkdir(path.join(dir, 'v2'));
    const link = path.join(dir, 'package');
    await symlink('v1', link);
    const l1 = await fingerprint(link);
    await symlink('v2', `${link}.new`);
    await rename(`${link}.new`, link);
    assert.notEqual(await fingerprint(link), l1);
    assert.equal(await fingerprint(path.join(dir, 'nope')), 'missing');
  } finally { await cleanup(); }
});

test('restarts after a change only when idle and once results are acknowledged', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const f = path.join(dir, 'client.json');
    await writeFile(f, '{"v":1}');
    let idle = false;
    let unreported = ['job1'];
    let restarts = 0;
    const w = new RestartWatch({
      paths: [f], log: silentLogger(), idle: () => idle, unreported: async () => unreported,
      restart: () => { restarts++; }, checkEveryMs: 50,
    });
    await w.start();
    await sleep(200);
    assert.equal(restarts, 0, 'nothing changed');
    await writeFile(f, '{"v":2}');
    await sleep(300);
    assert.equal(restarts, 0, 'busy: waits');
    idle = true;
    const t0 = Date.now();
    setTimeout(() => { unreported = []; }, 400);
    await waitFor('restart', () => restarts === 1, 5000, 20);
    assert.ok(Date.now() - t0 >= 350, 'waited for the acknowledgement');
    await sleep(200);
    assert.equal(restarts, 1, 'once');
    w.stop();
  } finally { await cleanup(); }
});
