// Published configurations shared by hubs (hub/cluster/published-kv.ts and
// published-mirror.ts) on a real 3-node JetStream cluster: `bento-hub deploy`
// at fleet A (its CLI talking to NATS) publishes; hub B's mirror rebuilds the
// same tree in B's own jail, verified by the content hash, and follows later
// deploys at either hub; two deploys racing from one revision cannot both
// land; a tampered or malicious object is never served; with NATS gone a
// deploy is refused with a clear code and B's jail keeps serving what it has.
import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import { hashTree } from '../../common/platform/tree-hash.js';
import type { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { KvPublishedStore, objectName, readable, type PublishedRecord } from '../../hub/cluster/published-kv.js';
import { PublishedMirror } from '../../hub/cluster/published-mirror.js';
import { readVersionFile } from '../../hub/publish/published.js';
import { stageHost } from '../../hub/publish/publish.js';
import type { HostSource } from '../../hub/publish/sources.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import type { TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';
import { captureLog, clusterFleet, dropPrefix, freshPrefix, openBackend } from './cluster-content-helpers.js';

let nats: NatsCluster;
before(async () => { nats = await startNatsCluster(); });
after(() => nats?.stop());

const log = silentLogger();
const PUBLISH = { publish: { buildCommand: ['true'], keepVersions: 2 } };

async function writeConfig(f: TestFleet, host: string, label: string): Promise<void> {
  const dir = path.join(f.fleetDir, 'hosts', host);
  await mkdir(path.join(dir, 'modules'), { recursive: true });
  await writeFile(path.join(dir, 'configuration.nix'), `{ ... }: { networking.hostName = "${host}"; system.nixos.label = "${label}"; }\n`);
  await writeFile(path.join(dir, 'modules', 'data.bin'), Buffer.alloc(300_000, label.length));
}

async function deploy(f: TestFleet, hosts: string[] = []): Promise<{ code: number; rows: Array<{ host: string; result: string; hash: string | null; message: string }>; stderr: string }> {
  const r = await f.hubCli(['deploy', ...hosts, '--json'], 120_000);
  const rows = r.stdout ? (JSON.parse(r.stdout) as { hosts: Array<{ host: string; result: string; hash: string | null; message: string }> }).hosts : [];
  return { code: r.code, rows, stderr: r.stderr };
}

/** Hub B's side: its connection, the store and its mirror into B's jails. */
async function mirrorAt(nats_: NatsCluster, prefix: string, fleet: TestFleet, hubName: string, mlog = log): Promise<{ backend: NatsStateBackend; store: KvPublishedStore; mirror: PublishedMirror; close(): Promise<void> }> {
  const backend = await openBackend(nats_, prefix, hubName);
  const store = await KvPublishedStore.open(backend, { fleetDir: fleet.fleetDir, log });
  const mirror = new PublishedMirror({ records: store.records, objects: store.objects, fleetDir: fleet.fleetDir, keepVersions: 2, log: mlog, retryMs: 300 });
  mirror.start();
  return { backend, store, mirror, async close() { await mirror.close(); await store.close(); await backend.close(); } };
}

async function served(f: TestFleet, host: string): Promise<{ hash: string; revision: number | undefined; tree: string } | null> {
  const v = await readVersionFile(f.fleetDir, host);
  if (!v) return null;
  return { hash: v.hash, revision: v.revision, tree: (await hashTree(path.join(f.fleetDir, 'jails', host, 'versions', v.hash))).hash };
}

test('deploy at A, B mirrors it verified; later deploys at A and at B are followed by both; old trees are dropped everywhere', async () => {
  const prefix = freshPrefix('pa');
  const fa = await clusterFleet(nats, prefix, 'huba', { hubSettings: PUBLISH });
  const fb = await clusterFleet(nats, prefix, 'hubb', { hubSettings: PUBLISH });
  const b = await mirrorAt(nats, prefix, fb, 'hubb');
  try {
    await fa.addHost('web1');
    await writeConfig(fa, 'web1', 'v1');
    const d1 = await deploy(fa);
    assert.equal(d1.code, 0, d1.stderr);
    const h1 = d1.rows[0]!.hash!;
    assert.equal(d1.rows[0]!.result, 'updated');
    // A's own jail has it at once (the deploy placed its staged tree), with the record's revision.
    const atA = await served(fa, 'web1');
    assert.equal(atA?.hash, h1);
    assert.equal(atA?.tree, h1);
    assert.ok(atA!.revision! > 0);
    // B's mirror rebuilt the same tree from the cluster.
    const atB = await waitFor('B serves v1', async () => ((await served(fb, 'web1'))?.hash === h1 ? served(fb, 'web1') : null), 15_000);
    assert.deepEqual(atB, atA);
    // The SFTP jail's own view: version.json is a plain file, the tree is plain files and directories.
    assert.equal((await lstat(path.join(fb.fleetDir, 'jails', 'web1', 'version.json'))).isFile(), true);

    // Unchanged at A: no changes, nothing written to the cluster.
    const same = await deploy(fa);
    assert.deepEqual(same.rows.map((r) => r.result), ['no-changes']);
    assert.equal((await readVersionFile(fb.fleetDir, 'web1'))?.revision, atA!.revision);

    // A newer version, deployed at B from B's own hosts/ tree: A's jail is not behind for long... once A mirrors.
    await writeConfig(fb, 'web1', 'v2-from-b');
    const d2 = await deploy(fb);
    assert.equal(d2.code, 0, d2.stderr);
    const h2 = d2.rows[0]!.hash!;
    assert.notEqual(h2, h1);
    const a = await mirrorAt(nats, prefix, fa, 'huba');
    try {
      await waitFor('A serves v2', async () => (await served(fa, 'web1'))?.hash === h2 || null, 15_000);
      // A third version at A: B follows; keepVersions 2 keeps two trees per jail and two objects in the cluster.
      await writeConfig(fa, 'web1', 'v3-at-a');
      const d3 = await deploy(fa);
      assert.equal(d3.code, 0, d3.stderr);
      const h3 = d3.rows[0]!.hash!;
      assert.equal(d3.rows[0]!.result, 'updated');
      await waitFor('B serves v3', async () => (await served(fb, 'web1'))?.hash === h3 || null, 15_000);
      await b.mirror.idle();
      for (const f of [fa, fb]) assert.deepEqual((await readdir(path.join(f.fleetDir, 'jails', 'web1', 'versions'))).sort(), [h2, h3].sort());
      const objs = (await b.store.objects.list()).filter((o) => !o.deleted).map((o) => o.name).sort();
      assert.deepEqual(objs, [objectName('web1', h2), objectName('web1', h3)].sort());
      assert.equal((b.store.records.get('web1') as PublishedRecord).hub, 'huba');
    } finally {
      await a.close();
    }
  } finally {
    await b.close();
    await fa.close();
    await fb.close();
    await dropPrefix(nats, prefix);
  }
});

test('two deploys of one host from the same revision: one lands, the other is refused with STATE_CONFLICT and publishes nothing', async () => {
  const prefix = freshPrefix('pb');
  const fa = await clusterFleet(nats, prefix, 'huba', { hubSettings: PUBLISH });
  const fb = await clusterFleet(nats, prefix, 'hubb', { hubSettings: PUBLISH });
  const [ba, bb] = [await openBackend(nats, prefix, 'huba'), await openBackend(nats, prefix, 'hubb')];
  const sa = await KvPublishedStore.open(ba, { fleetDir: fa.fleetDir, log });
  const sb = await KvPublishedStore.open(bb, { fleetDir: fb.fleetDir, log });
  try {
    for (const f of [fa, fb]) await writeConfig(f, 'web1', f === fa ? 'from-a' : 'from-b');
    const source = (f: TestFleet): HostSource => ({ host: 'web1', dir: path.join(f.fleetDir, 'hosts', 'web1'), label: 'hosts/web1', kind: 'configuration' });
    const [stA, stB] = [await stageHost(fa.fleetDir, source(fa)), await stageHost(fb.fleetDir, source(fb))];
    const [beforeA, beforeB] = [await sa.current('web1'), await sb.current('web1')];
    assert.equal(beforeA, null);
    const res = await Promise.allSettled([
      sa.publish(stA, { buildOk: true, keepVersions: 2 }, beforeA),
      sb.publish(stB, { buildOk: true, keepVersions: 2 }, beforeB),
    ]);
    const won = res.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, JSON.stringify(res.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))));
    const lost = res.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal(lost.reason.code, 'STATE_CONFLICT');
    assert.match(lost.reason.message, /published at another hub meanwhile.*run deploy again/);
    const winner = won[0] === 0 ? stA : stB;
    const loserFleet = won[0] === 0 ? fb : fa;
    await waitFor('both views agree', () => (sa.records.get('web1')?.hash === winner.hash && sb.records.get('web1')?.hash === winner.hash) || null);
    // The loser's jail got nothing and its staging is gone.
    assert.equal(await readVersionFile(loserFleet.fleetDir, 'web1'), null);
    assert.deepEqual((await readdir(path.join(loserFleet.fleetDir, 'jails', 'web1'))).filter((n) => n.startsWith('.staging-')), []);
  } finally {
    await sa.close();
    await sb.close();
    await ba.close();
    await bb.close();
    await fa.close();
    await fb.close();
    await dropPrefix(nats, prefix);
  }
});

test('a record whose object does not hash to it, or whose archive tries to escape, is never served: the jail keeps the previous version', async () => {
  const prefix = freshPrefix('pc');
  const fa = await clusterFleet(nats, prefix, 'huba', { hubSettings: PUBLISH });
  const fb = await clusterFleet(nats, prefix, 'hubb', { hubSettings: PUBLISH });
  const seen = captureLog();
  const b = await mirrorAt(nats, prefix, fb, 'hubb', seen.log);
  try {
    await fa.addHost('web1');
    await writeConfig(fa, 'web1', 'good');
    const d = await deploy(fa);
    assert.equal(d.code, 0, d.stderr);
    const good = d.rows[0]!.hash!;
    await waitFor('B serves the good version', async () => (await served(fb, 'web1'))?.hash === good || null, 15_000);
    const refusals = (): string[] => seen.lines().filter((l) => l['msg'] === 'could not mirror the published configuration; the jail serves the previous one, trying again').map((l) => String(l['err']));
    const fake = 'f'.repeat(64);
    const evil = 'e'.repeat(64);
    // An object whose tree is not what its name and record say.
    await b.store.objects.put({ name: objectName('web1', fake) }, readable((async function* () {
      yield Buffer.from('bento-tree-archive-v1\n{"f":"configuration.nix","n":5,"x":false}\nevil!{"end":1}\n');
    })()));
    const rec = b.store.records.entry('web1')!;
    await b.store.records.set('web1', { ...rec.value, hash: fake, kept: [fake, good] }, { expectRevision: rec.revision });
    await waitFor('the mirror refused the tampered tree', () => refusals().some((e) => /hashes to .*its record says ffffffffffff/.test(e)) || null, 15_000);
    // And one that tries to write outside its staging directory.
    await b.store.objects.put({ name: objectName('web1', evil) }, readable((async function* () {
      yield Buffer.from('bento-tree-archive-v1\n{"f":"../../../../escaped","n":5,"x":false}\nevil!{"end":1}\n');
    })()));
    const r2 = b.store.records.entry('web1')!;
    await b.store.records.set('web1', { ...r2.value, hash: evil, kept: [evil, good] }, { expectRevision: r2.revision });
    await waitFor('the mirror refused the escaping archive', () => refusals().some((e) => /refused path "\.\.\/\.\.\/\.\.\/\.\.\/escaped"/.test(e)) || null, 15_000);
    // Both stay refused at every retry; B keeps serving the good tree.
    const now = await served(fb, 'web1');
    assert.equal(now?.hash, good);
    assert.equal(now?.tree, good);
    assert.deepEqual((await readdir(path.join(fb.fleetDir, 'jails', 'web1', 'versions'))), [good]);
    assert.deepEqual((await readdir(path.join(fb.fleetDir, 'jails', 'web1'))).filter((n) => n.startsWith('.staging-')), []);
    assert.equal(await lstat(path.join(fb.fleetDir, 'escaped')).catch(() => null), null);
    assert.equal(await lstat(path.join(fb.dir, 'escaped')).catch(() => null), null);
    // A good deploy after that is served again.
    await writeConfig(fa, 'web1', 'good-again');
    const d2 = await deploy(fa);
    assert.equal(d2.code, 0, d2.stderr);
    await waitFor('B serves the next good version', async () => (await served(fb, 'web1'))?.hash === d2.rows[0]!.hash || null, 15_000);
  } finally {
    await b.close();
    await fa.close();
    await fb.close();
    await dropPrefix(nats, prefix);
  }
});

test('NATS entirely unreachable: deploy is refused with CLUSTER_UNAVAILABLE, B\'s jail keeps serving the last mirrored version; once NATS is back both work again', async () => {
  const prefix = freshPrefix('pd');
  const fa = await clusterFleet(nats, prefix, 'huba', { hubSettings: PUBLISH });
  const fb = await clusterFleet(nats, prefix, 'hubb', { hubSettings: PUBLISH });
  // Short deadlines so the refusals come quickly.
  const hubJson = path.join(fa.fleetDir, 'hub.json');
  const cfg = JSON.parse(await readFile(hubJson, 'utf8')) as { cluster: Record<string, unknown> };
  cfg.cluster = { ...cfg.cluster, connectTimeoutMs: 2000, writeTimeoutMs: 3000, requestTimeoutMs: 1000 };
  await writeFile(hubJson, JSON.stringify(cfg));
  const b = await mirrorAt(nats, prefix, fb, 'hubb');
  try {
    await fa.addHost('web1');
    await writeConfig(fa, 'web1', 'before-outage');
    const d = await deploy(fa);
    assert.equal(d.code, 0, d.stderr);
    const h = d.rows[0]!.hash!;
    await waitFor('B serves it', async () => (await served(fb, 'web1'))?.hash === h || null, 15_000);
    for (let i = 0; i < nats.nodes.length; i++) await nats.kill(i);
    await writeConfig(fa, 'web1', 'during-outage');
    const t0 = Date.now();
    const refused = await deploy(fa);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /CLUSTER_UNAVAILABLE/);
    assert.ok(Date.now() - t0 < 30_000, `refused after ${Date.now() - t0} ms`);
    const still = await served(fb, 'web1');
    assert.equal(still?.hash, h);
    assert.equal(still?.tree, h);
    await nats.restartAll();
    const again = await deploy(fa);
    assert.equal(again.code, 0, again.stderr);
    await waitFor('B serves the version deployed after the outage', async () => (await served(fb, 'web1'))?.hash === again.rows[0]!.hash || null, 30_000);
  } finally {
    await b.close();
    await fa.close();
    await fb.close();
    await dropPrefix(nats, prefix);
  }
});
