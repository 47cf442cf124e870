// `bento-hub cluster sweep` (hub/cluster/content-sweep.ts) on a real 3-node
// JetStream cluster: configuration trees no published record keeps, and
// uploaded logs no log manifest lists (a hub killed between storing the
// object and its record, a failed delete) are removed once older than
// --min-age; objects a record keeps, young ones, ones only the stream
// leader's record keeps (a view that lacks the record), ones of a record this
// version cannot read, and objects that are not Bento's all stay.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { silentLogger } from '../../common/platform/log.js';
import { CONFIGS_OBJECTS, KvPublishedStore, objectName, PUBLISHED_STORE, isPublishedRecord, type PublishedRecord } from '../../hub/cluster/published-kv.js';
import { KvLogArchive } from '../../hub/cluster/logs-kv.js';
import { sweepObjects, type SweepResult } from '../../hub/cluster/content-sweep.js';
import { HASH_RE } from '../../hub/publish/layout.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { TestFleet } from '../helpers/fleet.js';
import { clusterFleet, dropPrefix, freshPrefix, openBackend } from './cluster-content-helpers.js';

let nats: NatsCluster;
before(async () => { nats = await startNatsCluster(); });
after(() => nats?.stop());

const h = (c: string): string => c.repeat(64);
const [H1, H2, H3, H4, H5] = ['1', '2', '3', '4', '5'].map(h) as [string, string, string, string, string];
const LOG_KEPT = '20261207-1000_abc_success.log.gz';
const LOG_ORPHAN = '20261207-1100_abc_failure.log.gz';

function record(hash: string, kept: string[]): PublishedRecord {
  return { version: 1, hash, publishedAt: new Date().toISOString(), files: 1, bytes: 5, source: 'test', buildOk: null, hub: 'huba', kept };
}

const names = (objs: Array<{ name: string }>): string[] => objs.map((o) => o.name).sort();
type Sweep = { dryRun: boolean; configs: SweepResult; logs: SweepResult };

test('cluster sweep removes only old objects no record keeps, configurations and logs: dry run, --min-age, the leader\'s record, an unreadable record, foreign names', async () => {
  const prefix = freshPrefix('sw');
  const fleet = await clusterFleet(nats, prefix, 'huba');
  const backend = await openBackend(nats, prefix, 'huba');
  const store = await KvPublishedStore.open(backend, { fleetDir: fleet.fleetDir, log: silentLogger() });
  const logs = await KvLogArchive.open(backend, { log: silentLogger() });
  try {
    const put = (name: string): Promise<unknown> => store.objects.putBlob({ name }, new TextEncoder().encode(`tree ${name}`));
    // web1's record keeps H1 and H2; H3 is a killed deploy's upload; web9 has no record at all; web7's
    // record is of a version this one cannot read, web8's is not even JSON; "notes/readme" is not a HOST/HASH name.
    for (const n of [objectName('web1', H1), objectName('web1', H2), objectName('web1', H3), objectName('web9', H4), objectName('web7', H5), 'notes/readme']) await put(n);
    await store.records.set('web1', record(H1, [H1, H2]));
    const kv = await new Kvm(jetstream(backend.nc)).open(backend.names.bucket(PUBLISHED_STORE));
    await kv.put('web7', JSON.stringify({ version: 2, hash: H5, kept: [H5] }));
    await kv.put('web8', 'not json');
    await put(objectName('web8', H5));
    // Logs: one stored as a hub stores it (object, then manifest), one whose hub died before its manifest entry.
    const file = path.join(fleet.fleetDir, 'log.gz');
    await writeFile(file, 'a log');
    await logs.store('web1', LOG_KEPT, file, { quotaBytes: 1 << 20, maxFiles: 10 });
    await logs.objects.putBlob({ name: `web1/${LOG_ORPHAN}` }, new TextEncoder().encode('an orphan log'));
    await new Promise((r) => setTimeout(r, 1500)); // every object older than --min-age 1s

    const sweep = async (args: string[]): Promise<Sweep> => {
      const r = await fleet.hubCli(['cluster', 'sweep', ...args, '--json'], 60_000);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Sweep;
    };
    const left = async (objects: typeof store.objects): Promise<string[]> => (await objects.list()).filter((o) => !o.deleted).map((o) => o.name).sort();
    const configs = [objectName('web1', H1), objectName('web1', H2), objectName('web1', H3), objectName('web7', H5), objectName('web8', H5), objectName('web9', H4), 'notes/readme'].sort();
    const orphans = [objectName('web1', H3), objectName('web9', H4)].sort();

    // Dry run: says what would go, removes nothing.
    const dry = await sweep(['--dry-run', '--min-age', '1s']);
    assert.equal(dry.dryRun, true);
    assert.deepEqual(names(dry.configs.removed), orphans);
    assert.deepEqual([dry.configs.objects, dry.configs.kept, dry.configs.foreign], [7, 2, 1]);
    assert.deepEqual(dry.configs.failed.map((f) => [f.host, /not one this version of Bento reads|is not JSON/.test(f.error)]).sort(), [['web7', true], ['web8', true]]);
    assert.deepEqual(names(dry.logs.removed), [`web1/${LOG_ORPHAN}`]);
    assert.deepEqual([dry.logs.objects, dry.logs.kept, dry.logs.keptByLeader], [2, 1, 1], 'the stored log is kept by its manifest, read at the leader');
    assert.deepEqual(await left(store.objects), configs);
    assert.equal((await left(logs.objects)).length, 2);

    // The default --min-age (1h): nothing is old enough to be judged.
    const young = await sweep([]);
    assert.deepEqual(names(young.configs.young), [...orphans, objectName('web7', H5), objectName('web8', H5)].sort());
    assert.deepEqual([young.configs.removed, young.logs.removed], [[], []]);
    assert.deepEqual(await left(store.objects), configs);

    // A view that lacks every record (a lagging replica's): the leader's record still keeps H1 and H2.
    const lagging = await sweepObjects({
      objects: { scan: () => backend.scanObjects(CONFIGS_OBJECTS), deleteScanned: (m) => backend.objectVersions(CONFIGS_OBJECTS).deleteScanned(m) }, isItem: (x) => HASH_RE.test(x), keptInView: () => false, minAgeMs: 1000, dryRun: true,
      keptAtLeader: async (host) => {
        const v = await backend.leaderValue(PUBLISHED_STORE, host);
        if (v === null) return null;
        if (!isPublishedRecord(host, v)) throw new Error('unreadable');
        return new Set(v.kept);
      },
    });
    assert.equal(lagging.keptByLeader, 2);
    assert.deepEqual(names(lagging.removed), orphans);

    // For real.
    const done = await sweep(['--min-age', '1s']);
    assert.deepEqual([names(done.configs.removed), names(done.logs.removed)], [orphans, [`web1/${LOG_ORPHAN}`]]);
    assert.deepEqual(await left(store.objects), [objectName('web1', H1), objectName('web1', H2), objectName('web7', H5), objectName('web8', H5), 'notes/readme'].sort());
    assert.deepEqual(await left(logs.objects), [`web1/${LOG_KEPT}`]);
    assert.equal((await logs.read('web1', LOG_KEPT))?.toString(), 'a log', 'the kept log still reads');
    const again = await sweep(['--min-age', '1s']);
    assert.deepEqual([again.configs.removed, again.logs.removed], [[], []], 'nothing left to remove');

    // Plain output for people, and a clear error for a bad duration.
    const text = await fleet.hubCli(['cluster', 'sweep', '--dry-run', '--min-age', '1s'], 60_000);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /configs: 5 objects, 2 kept by a record, 0 would be removed \(0 bytes\), 0 unreferenced but young, 2 failed, 1 not Bento's/);
    assert.match(text.stdout, /logs: 1 objects, 1 kept by a record \(1 only by the stream leader's\), 0 would be removed/);
    const bad = await fleet.hubCli(['cluster', 'sweep', '--min-age', 'soon'], 60_000);
    assert.equal(bad.code, 2, bad.stdout);
    assert.match(bad.stderr, /--min-age must be a duration/);
  } finally {
    await store.close();
    await backend.close();
    await fleet.close();
    await dropPrefix(nats, prefix);
  }
});

test('cluster sweep on a single hub says there is nothing to sweep', async () => {
  const fleet = await TestFleet.create();
  try {
    const r = await fleet.hubCli(['cluster', 'sweep', '--json'], 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { clustered: false });
  } finally {
    await fleet.close();
  }
});
