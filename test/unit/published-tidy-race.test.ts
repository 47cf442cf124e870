// A "no changes" deploy at a hub racing that hub's own mirror placing a newer
// record (hub/cluster/published-kv.ts unchanged(), hub/publish/publish.ts
// retidy()), and the mirror repairing a jail whose tree went missing
// (published-mirror.ts sync()). Records on the memory backend, jails on disk.
//
// The interleaving is forced, not hoped for: fs/promises.lstat is wrapped
// (module.syncBuiltinESMExports, so the ES imports of the code under test see
// it) and, at the deploy's check that its tree is in place, the mirror's
// place() of the newer version runs to completion before the check returns.
// Without the lock the deploy then tidied against its older idea: `config`
// pointed back and the tree version.json names was deleted. The embedded
// hub's file store (published-store.ts) had the same unlocked tidy, raced
// here by another deploy's commit: there the hook is the first file system
// call of the tidy (readlink of `config`, or the jail's mkdir before the
// lock).
import assert from 'node:assert/strict';
import fsp, { mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ObjectStore } from '@nats-io/obj';
import { silentLogger } from '../../common/platform/log.js';
import { KvPublishedStore, localVersion, readable, type PublishedRecord } from '../../hub/cluster/published-kv.js';
import { PublishedMirror } from '../../hub/cluster/published-mirror.js';
import { jailPaths, versionDir } from '../../hub/publish/layout.js';
import { readVersionFile } from '../../hub/publish/published.js';
import { place, stageHost, type StagedHost } from '../../hub/publish/publish.js';
import { filePublishedStore } from '../../hub/publish/published-store.js';
import type { HostSource } from '../../hub/publish/sources.js';
import { packTree } from '../../hub/publish/tree-archive.js';
import { loadSnapshot } from '../../hub/sftp/resolve.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';

interface Setup {
  fleetDir: string;
  store: KvPublishedStore;
  /** Trees by hash, standing for the object store (outside any jail). */
  trees: Map<string, string>;
  source(name: string, body: string): Promise<HostSource>;
  done(): Promise<void>;
}

async function setup(): Promise<Setup> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tidy-race-'));
  const fleetDir = path.join(root, 'fleet');
  const trees = new Map<string, string>();
  // The object store as far as these paths use it: every tree is there, and nothing is refreshed or deleted.
  const objects = {
    info: async (name: string) => ({ name, deleted: false }),
    get: async (name: string) => {
      const tree = trees.get(name.split('/')[1]!);
      return tree ? { info: { name }, data: readable(packTree(tree)[Symbol.asyncIterator]()), error: Promise.resolve(null) } : null;
    },
  } as unknown as ObjectStore;
  const backend = new MemoryBackend();
  const cluster = {
    openKeyed: backend.openKeyed.bind(backend), openObjectStore: async () => objects, hubName: 'huba',
    objectVersions: () => ({ refresh: async () => true, deleteScanned: async () => false }),
    // One memory store stands for the bucket and every view of it: its record is the leader's.
    leaderValue: async (_name: string, key: string) => store.records.get(key) ?? null,
  };
  const store: KvPublishedStore = await KvPublishedStore.open(cluster, { fleetDir, log: silentLogger() });
  return {
    fleetDir, store, trees,
    async source(name, body) {
      const dir = path.join(fleetDir, 'hosts', name);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'configuration.nix'), body);
      return { host: 'web1', kind: 'configuration', dir, label: `hosts/${name}` };
    },
    async done() {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A record for STAGED in the store, as a deploy at HUB sets it; its revision. */
async function setRecord(s: Setup, staged: StagedHost, hub: string, kept: string[]): Promise<{ rec: PublishedRecord; revision: number }> {
  const rec: PublishedRecord = { version: 1, hash: staged.hash, publishedAt: new Date().toISOString(), files: staged.files, bytes: staged.bytes, source: staged.source.label, buildOk: true, hub, kept };
  return { rec, revision: await s.store.records.set(staged.source.host, rec) };
}

/** What the jail serves: version.json's hash, whether its tree is there, where `config` points, what the SFTP snapshot serves. */
async function served(fleetDir: string, host: string): Promise<{ version: string | null; tree: boolean; config: string | null; sftp: string | null }> {
  const v = await readVersionFile(fleetDir, host);
  const tree = v ? (await fsp.lstat(versionDir(jailPaths(fleetDir, host), v.hash)).catch(() => null))?.isDirectory() === true : false;
  const config = await readlink(jailPaths(fleetDir, host).configLink).catch(() => null);
  return { version: v?.hash ?? null, tree, config, sftp: (await loadSnapshot(fleetDir, host)).version?.hash ?? null };
}

test('a no-change deploy whose check runs while the mirror places a newer record leaves the newer tree served', async () => {
  const s = await setup();
  const origLstat = fsp.lstat;
  try {
    const v1 = await stageHost(s.fleetDir, await s.source('v1', '{ ... }: { v = 1; }\n'));
    const r1 = await setRecord(s, v1, 'huba', [v1.hash]);
    await place(s.fleetDir, 'web1', { tree: v1.staging, version: localVersion({ value: r1.rec, revision: r1.revision }), keepVersions: 1 });
    // Hub B deploys v2: the record moves on, and this hub's mirror has v2's tree ready to place.
    const v2 = await stageHost(s.fleetDir, await s.source('v2', '{ ... }: { v = 2; }\n'));
    const r2 = await setRecord(s, v2, 'hubb', [v2.hash, v1.hash]);
    // Meanwhile `bento-hub deploy` here, its checkout still at v1 and its look at the record before B's: unchanged().
    const again = await stageHost(s.fleetDir, await s.source('v1', '{ ... }: { v = 1; }\n'));
    assert.equal(again.hash, v1.hash);
    const v1Dir = versionDir(jailPaths(s.fleetDir, 'web1'), v1.hash);
    let mirrored = false;
    (fsp as { lstat: typeof fsp.lstat }).lstat = (async (p: string, ...rest: unknown[]) => {
      const r = await (origLstat as (...a: unknown[]) => Promise<unknown>)(p, ...rest);
      if (!mirrored && p === v1Dir) {
        mirrored = true; // the deploy checks its tree is in place: the mirror's place() of v2 lands right now
        await place(s.fleetDir, 'web1', { tree: v2.staging, version: localVersion({ value: r2.rec, revision: r2.revision }), keepVersions: 1 });
      }
      return r;
    }) as typeof fsp.lstat;
    syncBuiltinESMExports();
    const used = await s.store.unchanged(again, localVersion({ value: r1.rec, revision: r1.revision }), 1);
    (fsp as { lstat: typeof fsp.lstat }).lstat = origLstat;
    syncBuiltinESMExports();
    if (!used) await rm(again.staging, { recursive: true, force: true });
    assert.ok(mirrored, 'the deploy checked its tree while the mirror placed v2');
    assert.deepEqual(await served(s.fleetDir, 'web1'), { version: v2.hash, tree: true, config: `versions/${v2.hash}`, sftp: v2.hash });
  } finally {
    (fsp as { lstat: typeof fsp.lstat }).lstat = origLstat;
    syncBuiltinESMExports();
    await s.done();
  }
});

test('the mirror repairs a jail whose version.json is up to date but whose tree is missing', async () => {
  const s = await setup();
  try {
    const v1 = await stageHost(s.fleetDir, await s.source('v1', '{ ... }: { v = 1; }\n'));
    const r1 = await setRecord(s, v1, 'huba', [v1.hash]);
    // The object store's copy of the tree, outside the jail.
    const copy = await stageHost(s.fleetDir, await s.source('v1', '{ ... }: { v = 1; }\n'), path.join(s.fleetDir, 'objects'));
    s.trees.set(v1.hash, copy.staging);
    await place(s.fleetDir, 'web1', { tree: v1.staging, version: localVersion({ value: r1.rec, revision: r1.revision }), keepVersions: 1 });
    await rm(versionDir(jailPaths(s.fleetDir, 'web1'), v1.hash), { recursive: true }); // what the unlocked tidy left
    assert.equal((await served(s.fleetDir, 'web1')).sftp, null);
    const mirror = new PublishedMirror({ records: s.store.records, objects: s.store.objects, fleetDir: s.fleetDir, keepVersions: 1, log: silentLogger() });
    mirror.start();
    await mirror.idle();
    await mirror.close();
    assert.deepEqual(await served(s.fleetDir, 'web1'), { version: v1.hash, tree: true, config: `versions/${v1.hash}`, sftp: v1.hash });
  } finally {
    await s.done();
  }
});

test('the embedded hub: a no-change deploy racing another deploy\'s commit leaves the committed tree served', async () => {
  const s = await setup();
  const orig = { readlink: fsp.readlink, mkdir: fsp.mkdir };
  const restore = (): void => { Object.assign(fsp, orig); syncBuiltinESMExports(); };
  try {
    const files = filePublishedStore(s.fleetDir);
    const v1 = await stageHost(s.fleetDir, await s.source('v1', '{ ... }: { v = 1; }\n'));
    await files.publish(v1, { buildOk: true, keepVersions: 1 }, null);
    const before = await files.current('web1');
    const v2 = await stageHost(s.fleetDir, await s.source('v2', '{ ... }: { v = 2; }\n'));
    const again = await stageHost(s.fleetDir, await s.source('v1', '{ ... }: { v = 1; }\n'));
    const j = jailPaths(s.fleetDir, 'web1');
    let committed = false;
    // The other deploy commits v2 at the unchanged deploy's first step on the jail.
    const commitFirst = async (): Promise<void> => {
      if (committed) return;
      committed = true;
      await files.publish(v2, { buildOk: true, keepVersions: 1 }, before);
    };
    Object.assign(fsp, {
      readlink: async (p: string, ...rest: unknown[]) => {
        const r = await (orig.readlink as (...a: unknown[]) => Promise<unknown>)(p, ...rest);
        if (p === j.configLink) await commitFirst();
        return r;
      },
      mkdir: async (p: string, ...rest: unknown[]) => {
        if (p === j.root && !committed) await commitFirst();
        return (orig.mkdir as (...a: unknown[]) => Promise<unknown>)(p, ...rest);
      },
    });
    syncBuiltinESMExports();
    await files.unchanged(again, before!, 1);
    restore();
    await rm(again.staging, { recursive: true, force: true });
    assert.ok(committed);
    assert.deepEqual(await served(s.fleetDir, 'web1'), { version: v2.hash, tree: true, config: `versions/${v2.hash}`, sftp: v2.hash });
  } finally {
    restore();
    await s.done();
  }
});
