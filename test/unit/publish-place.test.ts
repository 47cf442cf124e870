// place() (hub/publish/publish.ts), how a deploy and a cluster's mirror put a
// tree in a jail: a version from the cluster never replaces one with a higher
// revision (a slow mirror racing a newer deploy at the same hub), and the
// tree it brought is removed, not left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hashTree } from '../../common/platform/tree-hash.js';
import { newStaging, place } from '../../hub/publish/publish.js';
import { readVersionFile, type VersionFile } from '../../hub/publish/published.js';
import { tmpDir } from '../helpers/proc.js';

async function tree(fleet: string, host: string, content: string): Promise<{ dir: string; hash: string }> {
  const dir = await newStaging(fleet, host);
  await mkdir(dir);
  await writeFile(path.join(dir, 'configuration.nix'), content);
  return { dir, hash: (await hashTree(dir)).hash };
}

function version(hash: string, revision?: number): VersionFile {
  return { version: 1, hash, publishedAt: new Date().toISOString(), files: 1, bytes: 1, source: 'hosts/web1', buildOk: true, ...(revision !== undefined ? { revision } : {}) };
}

test('a version from the cluster never replaces a newer one; its tree is dropped', async () => {
  const t = await tmpDir('bento-place-');
  try {
    const fleet = path.join(t.dir, 'fleet');
    const newer = await tree(fleet, 'web1', 'new');
    await place(fleet, 'web1', { tree: newer.dir, version: version(newer.hash, 7), keepVersions: 3 });
    const older = await tree(fleet, 'web1', 'old');
    const got = await place(fleet, 'web1', { tree: older.dir, version: version(older.hash, 5), keepVersions: 3 });
    assert.equal(got.hash, newer.hash);
    assert.equal((await readVersionFile(fleet, 'web1'))?.revision, 7);
    const jail = path.join(fleet, 'jails', 'web1');
    assert.deepEqual(await readdir(path.join(jail, 'versions')), [newer.hash]);
    assert.deepEqual((await readdir(jail)).filter((n) => n.startsWith('.staging-')), []);
    // The same or a higher revision goes in; a version without a revision (a single hub's deploy) always does.
    const next = await tree(fleet, 'web1', 'next');
    assert.equal((await place(fleet, 'web1', { tree: next.dir, version: version(next.hash, 8), keepVersions: 3 })).hash, next.hash);
    // No tree, and none in place: refused rather than naming a missing tree.
    await assert.rejects(place(fleet, 'web1', { tree: null, version: version('a'.repeat(64), 9), keepVersions: 3 }), /is not in place/);
    assert.equal((await readVersionFile(fleet, 'web1'))?.hash, next.hash);
  } finally {
    await t.cleanup();
  }
});
