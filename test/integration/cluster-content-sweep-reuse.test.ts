// `bento-hub cluster sweep` racing writers that reuse or rewrite an object
// it judged unreferenced, on a real 3-node JetStream cluster: a deploy
// reusing a configuration object left by a refused deploy, and a hub storing
// a log again under a name an orphan object has. The record written after the
// object must never name an object the sweep removed (before the fix: the
// deploying hub served it, every other hub's mirror failed NOT_PUBLISHED
// forever, and the admin had been told "updated").
//
// The interleavings are forced by wrapping a method (the sweep itself is the
// real `sweepContent`, with its own connection):
//   - KvPublishedStore.objects.info: the sweep runs between the deploy's look
//     at the object and everything after it;
//   - KvPublishedStore.records.set: the sweep (--min-age 0) runs between the
//     deploy's upload and its record;
//   - NatsStateBackend.prototype.leaderValue: the deploy (or the log store)
//     runs inside the sweep's read of the leader's record, and the sweep gets
//     the answer from before it, as when that read comes just before the
//     record is set.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { sweepContent, type ContentSweep } from '../../hub/cluster/content-cli.js';
import { KvLogArchive } from '../../hub/cluster/logs-kv.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { KvPublishedStore, localVersion, objectName } from '../../hub/cluster/published-kv.js';
import { PublishedMirror } from '../../hub/cluster/published-mirror.js';
import { readVersionFile } from '../../hub/publish/published.js';
import { stageHost, type StagedHost } from '../../hub/publish/publish.js';
import type { HostSource } from '../../hub/publish/sources.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import type { TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';
import { clusterFleet, dropPrefix, freshPrefix, openBackend } from './cluster-content-helpers.js';

let nats: NatsCluster;
before(async () => { nats = await startNatsCluster(); });
after(() => nats?.stop());

interface Hubs { fa: TestFleet; fb: TestFleet; a: NatsStateBackend; b: NatsStateBackend; storeA: KvPublishedStore; storeB: KvPublishedStore; source: HostSource }

/** Hubs A and B of a fresh prefix; FN runs with them, and everything is closed and dropped after. */
async function withHubs(tag: string, fn: (h: Hubs) => Promise<void>): Promise<void> {
  const prefix = freshPrefix(tag);
  const fa = await clusterFleet(nats, prefix, 'huba');
  const fb = await clusterFleet(nats, prefix, 'hubb');
  const a = await openBackend(nats, prefix, 'huba');
  const b = await openBackend(nats, prefix, 'hubb');
  const storeA = await KvPublishedStore.open(a, { fleetDir: fa.fleetDir, log: silentLogger() });
  const storeB = await KvPublishedStore.open(b, { fleetDir: fb.fleetDir, log: silentLogger() });
  try {
    const dir = path.join(fa.fleetDir, 'hosts', 'web1');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'configuration.nix'), '{ ... }: { }\n');
    await fn({ fa, fb, a, b, storeA, storeB, source: { host: 'web1', kind: 'configuration', dir, label: 'hosts/web1' } });
  } finally {
    await storeA.close(); await storeB.close();
    await a.close(); await b.close();
    await fa.close(); await fb.close();
    await dropPrefix(nats, prefix);
  }
}

/** A deploy refused by compare-and-swap (another hub published meanwhile) leaves its object, old by --min-age 1s. */
async function leftByRefusedDeploy(h: Hubs): Promise<string> {
  const s1 = await stageHost(h.fa.fleetDir, h.source);
  const fake = { version: 1 as const, hash: s1.hash, publishedAt: new Date().toISOString(), files: 1, bytes: 1, source: 'x', buildOk: true, revision: 999_999 };
  await assert.rejects(h.storeA.publish(s1, { buildOk: true, keepVersions: 2 }, fake), (e: unknown) => e instanceof BentoError && e.code === 'STATE_CONFLICT');
  assert.ok(await h.storeA.objects.info(objectName('web1', s1.hash)));
  await new Promise((r) => setTimeout(r, 1500));
  return s1.hash;
}

/** The record keeps HASH, its object is there, and hub B's mirror serves it. */
async function assertShared(h: Hubs, hash: string): Promise<void> {
  assert.deepEqual(h.storeA.records.get('web1')?.kept, [hash]);
  const info = await h.storeA.objects.info(objectName('web1', hash));
  assert.ok(info && !info.deleted, 'the object the record keeps is there');
  const mirror = new PublishedMirror({ records: h.storeB.records, objects: h.storeB.objects, fleetDir: h.fb.fleetDir, keepVersions: 2, log: silentLogger(), retryMs: 60_000 });
  try {
    mirror.start();
    await mirror.idle();
  } finally {
    await mirror.close();
  }
  assert.equal((await readVersionFile(h.fb.fleetDir, 'web1'))?.hash, hash, 'hub B serves the published configuration');
}

test('a sweep between a deploy\'s look at a reused object and its record: the deploy stores the object again', async () => {
  await withHubs('ra', async (h) => {
    const hash = await leftByRefusedDeploy(h);
    const objects = h.storeA.objects as { info: typeof h.storeA.objects.info };
    const info = objects.info.bind(objects);
    let swept: ContentSweep | null = null;
    objects.info = async (n) => {
      const r = await info(n);
      swept ??= await sweepContent(h.fa.fleetDir, { minAgeMs: 1000, dryRun: false });
      return r;
    };
    const v = await h.storeA.publish(await stageHost(h.fa.fleetDir, h.source), { buildOk: true, keepVersions: 2 }, null);
    objects.info = info;
    assert.equal(v.hash, hash);
    assert.ok(swept, 'the sweep ran inside the deploy');
    await assertShared(h, hash);
  });
});

test('a sweep between a deploy\'s upload and its record (--min-age 0): the record never names a removed object', async () => {
  await withHubs('rb', async (h) => {
    const hash = await leftByRefusedDeploy(h);
    const records = h.storeA.records as { set: typeof h.storeA.records.set };
    const set = records.set.bind(records);
    let swept: ContentSweep | null = null;
    records.set = async (...args) => {
      swept ??= await sweepContent(h.fa.fleetDir, { minAgeMs: 0, dryRun: false });
      return set(...args);
    };
    await h.storeA.publish(await stageHost(h.fa.fleetDir, h.source), { buildOk: true, keepVersions: 2 }, null);
    records.set = set;
    assert.ok(swept);
    await assertShared(h, hash);
  });
});

/** Run WRITE inside the sweep's first read of HOST's record in STORE at the leader; every read answers as before WRITE. */
async function sweepRacing(fleetDir: string, store: string, host: string, write: () => Promise<unknown>): Promise<ContentSweep | null> {
  const proto = NatsStateBackend.prototype;
  const orig = proto.leaderValue;
  let first: Promise<unknown> | null = null;
  proto.leaderValue = async function (this: NatsStateBackend, s: string, k: string): Promise<unknown> {
    if (s !== store || k !== host) return orig.call(this, s, k);
    first ??= orig.call(this, s, k).then(async (v) => { await write(); return v; });
    return first;
  };
  try {
    return await sweepContent(fleetDir, { minAgeMs: 1000, dryRun: false });
  } finally {
    proto.leaderValue = orig;
  }
}

test('a deploy reusing an old object sets its record while the sweep holds the leader\'s older answer: the object stays', async () => {
  await withHubs('rc', async (h) => {
    const hash = await leftByRefusedDeploy(h);
    let staged: StagedHost | null = null;
    const r = await sweepRacing(h.fa.fleetDir, 'published', 'web1', async () => {
      staged = await stageHost(h.fa.fleetDir, h.source);
      await h.storeA.publish(staged, { buildOk: true, keepVersions: 2 }, null);
    });
    assert.ok(staged, 'the deploy ran inside the sweep');
    assert.deepEqual(r?.configs.removed, [], 'the refreshed object is not removed');
    assert.deepEqual(r?.configs.young.map((o) => o.name), [objectName('web1', hash)]);
    await assertShared(h, hash);
  });
});

test('a log stored again under an orphan object\'s name while the sweep judges the orphan: the stored log stays', async () => {
  await withHubs('rd', async (h) => {
    const logs = await KvLogArchive.open(h.a, { log: silentLogger() });
    const name = '20261207-1100_abc_failure.log.gz';
    await logs.objects.putBlob({ name: `web1/${name}` }, new TextEncoder().encode('an orphan copy'));
    await new Promise((r) => setTimeout(r, 1500));
    const file = path.join(h.fa.fleetDir, 'log.gz');
    await writeFile(file, 'the log');
    const r = await sweepRacing(h.fa.fleetDir, 'logs', 'web1', () => logs.store('web1', name, file, { quotaBytes: 1 << 20, maxFiles: 10 }));
    assert.deepEqual(r?.logs.removed, []);
    assert.deepEqual([...(await logs.list('web1')).keys()], [name]);
    assert.equal((await logs.read('web1', name))?.toString(), 'the log', 'the manifest\'s log reads');
  });
});

test('a deploy dropping an old version while another hub deploys it again, before its own view shows that: the object stays', async () => {
  await withHubs('re', async (h) => {
    // A publishes v1, then v2 keeping one version: v1's object is dropped after v2's record.
    const v1 = await stageHost(h.fa.fleetDir, h.source);
    const r1 = await h.storeA.publish(v1, { buildOk: true, keepVersions: 1 }, null);
    await writeFile(path.join(h.source.dir, 'configuration.nix'), '{ ... }: { v = 2; }\n');
    const v2 = await stageHost(h.fa.fleetDir, h.source);
    // B's checkout is at v1 again: its deploy reuses v1's object (refreshed before and after its record).
    const dirB = path.join(h.fb.fleetDir, 'hosts', 'web1');
    await mkdir(dirB, { recursive: true });
    await writeFile(path.join(dirB, 'configuration.nix'), '{ ... }: { }\n');
    const sourceB: HostSource = { ...h.source, dir: dirB };
    const v1Name = objectName('web1', v1.hash);
    const objects = h.storeA.objects as { info: typeof h.storeA.objects.info };
    const info = objects.info.bind(objects);
    const records = h.storeA.records as { get: typeof h.storeA.records.get };
    const get = records.get.bind(records);
    let ownRecord: ReturnType<typeof get> | null = null;
    let deployedAtB = false;
    // At A's look at v1's object before dropping it, B deploys v1 (all of it), and A's view of the record lags:
    // it still shows A's own v2 record, which keeps v2 only.
    objects.info = async (n) => {
      if (n === v1Name && !deployedAtB && get('web1')?.hash === v2.hash) {
        deployedAtB = true;
        ownRecord = get('web1')!;
        await waitFor('B sees v2\'s record', () => h.storeB.records.get('web1')?.hash === v2.hash, 10_000);
        const staged = await stageHost(h.fb.fleetDir, sourceB);
        assert.equal(staged.hash, v1.hash);
        await h.storeB.publish(staged, { buildOk: true, keepVersions: 2 }, localVersion(h.storeB.records.entry('web1')!));
      }
      return info(n);
    };
    records.get = (k) => (ownRecord && k === 'web1' ? ownRecord : get(k));
    try {
      await h.storeA.publish(v2, { buildOk: true, keepVersions: 1 }, r1);
    } finally {
      objects.info = info;
      records.get = get;
    }
    assert.ok(deployedAtB, 'B deployed v1 inside A\'s drop');
    await waitFor('A sees B\'s record', () => h.storeA.records.get('web1')?.hash === v1.hash, 10_000);
    const have = await h.storeA.objects.info(v1Name);
    assert.ok(have && !have.deleted, 'the object of the configuration B published is still in the cluster');
  });
});

test('a hub stalled past --min-age between a log\'s object and its manifest entry, the sweep reading the manifest just before the entry lands: the log stays', async () => {
  await withHubs('rf', async (h) => {
    const logs = await KvLogArchive.open(h.a, { log: silentLogger() });
    const name = '20261208-0100_def_failure.log.gz';
    const file = path.join(h.fa.fleetDir, 'log2.gz');
    await writeFile(file, 'the stalled log');
    // The object goes in; the hub then stalls (a slow event loop, a paused process) before its manifest entry.
    const objects = logs.objects as { put: typeof logs.objects.put };
    const put = objects.put.bind(objects);
    let go: () => void = () => undefined;
    const stalled = new Promise<void>((r) => { go = r; });
    objects.put = async (...args) => { const r = await put(...args); await stalled; return r; };
    const storing = logs.store('web1', name, file, { quotaBytes: 1 << 20, maxFiles: 10 });
    await waitFor('the object stored', async () => (await logs.objects.info(`web1/${name}`)) !== null, 10_000);
    await new Promise((r) => setTimeout(r, 1500)); // older than the sweep's --min-age (1 s)
    // The sweep reads the manifest (no entry yet); the hub resumes and its entry lands; then the sweep deletes.
    const r = await sweepRacing(h.fa.fleetDir, 'logs', 'web1', async () => { go(); await storing; });
    objects.put = put;
    assert.deepEqual([...(await logs.list('web1')).keys()], [name], 'the manifest lists the log');
    assert.equal((await logs.read('web1', name))?.toString(), 'the stalled log', 'the manifest\'s log reads');
    assert.ok(r, 'the sweep ran');
  });
});
