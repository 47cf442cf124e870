// `bento-hub cluster sweep` purging old KV deletion markers
// (hub/cluster/marker-sweep.ts) on a real 3-node JetStream cluster with
// replicas 3 (nats-server 2.9.10 here: it takes a purge with a subject
// filter and a sequence bound). Job records pruned by the production job
// store (a host keeps its newest `history` finished jobs) leave one marker
// each; the sweep removes them from the stream while every live record keeps
// its value and a freshly loaded view shows exactly the live keys; young
// markers stay, a dry run removes nothing, and a key written again after the
// scan keeps its new record (the purge is bounded by the marker's sequence).
// A create that meets a marker purged under it is made again, not refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamManager, type MsgRequest } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { silentLogger } from '../../common/platform/log.js';
import { JOB_PROGRESS, JOBS_STORE, JOBS_STORE_OPTIONS, isJobRecord, readJobRecords, type JobRecord } from '../../hub/store/job-record.js';
import { JobStore } from '../../hub/store/jobs.js';
import { newJob } from '../../hub/jobs/job-ids.js';
import { sweepContent, type ContentSweep } from '../../hub/cluster/content-cli.js';
import { sweepMarkers } from '../../hub/cluster/marker-sweep.js';
import { NatsKeyedStore } from '../../hub/cluster/kv-store.js';
import type { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { decodeToken } from '../../hub/cluster/names.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { clusterFleet, dropPrefix, freshPrefix, openBackend } from './cluster-content-helpers.js';

let nats: NatsCluster;
before(async () => { nats = await startNatsCluster(); });
after(() => nats?.stop());

type Sweep = ContentSweep & { dryRun: boolean };

const finished = (host: string, n: number): JobRecord => {
  const rec = newJob(host, 'switch');
  const t = new Date(Date.UTC(2026, 11, 1, 0, n)).toISOString();
  return { ...rec, requestedAt: t, startedAt: t, endedAt: t, state: 'success', exitCode: 0, durationMs: 1 };
};

/** Messages in the jobs bucket's stream, as its leader counts them. */
async function messages(backend: NatsStateBackend): Promise<number> {
  const jsm = await jetstreamManager(backend.nc, { checkAPI: false });
  return (await jsm.streams.info(`KV_${backend.names.bucket(JOBS_STORE)}`)).state.messages;
}

/** Hosts × jobs each finished through the production job store, which keeps 2 per host and deletes the older records. */
async function pruned(backend: NatsStateBackend, hosts: number, each: number): Promise<JobStore> {
  const jobs = await JobStore.open(backend, { history: 2, log: silentLogger() });
  for (let h = 1; h <= hosts; h++) for (let n = 0; n < each; n++) await jobs.save(finished(`web${h}`, n));
  await jobs.settled();
  return jobs;
}

test('cluster sweep purges old deletion markers of pruned jobs: dry run, --min-age, live records and a fresh view unchanged', async () => {
  const prefix = freshPrefix('mk');
  const fleet = await clusterFleet(nats, prefix, 'huba');
  const backend = await openBackend(nats, prefix, 'huba');
  const other = await openBackend(nats, prefix, 'hubb');
  try {
    const jobs = await pruned(backend, 3, 6);
    const live = jobs.all().map((r) => r.id).sort();
    assert.equal(live.length, 6);
    assert.equal(await messages(backend), 6 + 12, 'each pruned job left a deletion marker');
    await new Promise((r) => setTimeout(r, 1500)); // every marker older than --min-age 1s

    const cli = async (args: string[]): Promise<Sweep> => {
      const r = await fleet.hubCli(['cluster', 'sweep', ...args, '--json'], 60_000);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Sweep;
    };
    // Dry run: counts what would go, purges nothing.
    const dry = await cli(['--dry-run', '--min-age', '1s']);
    assert.deepEqual(dry.markers['jobs'], { keys: 18, markers: 12, purged: 12, young: 0, changed: 0, failed: 0 });
    assert.equal(await messages(backend), 18);
    // The default --min-age (1h): every marker is young, and stays.
    const young = await cli([]);
    assert.deepEqual(young.markers['jobs'], { keys: 18, markers: 12, purged: 0, young: 12, changed: 0, failed: 0 });
    assert.equal(await messages(backend), 18);

    // For real (the CLI's own function; the CLI takes at least 1s, the markers are older than that anyway).
    const started = Date.now();
    const done = await sweepContent(fleet.fleetDir, { minAgeMs: 0, dryRun: false });
    const ms = Date.now() - started;
    assert.deepEqual(done?.markers['jobs'], { keys: 18, markers: 12, purged: 12, young: 0, changed: 0, failed: 0 });
    assert.equal(await messages(backend), 6, 'the stream holds the live records only');
    for (const [store, m] of Object.entries(done!.markers)) if (store !== 'jobs') assert.equal(m.markers, 0, store);
    // Every live record keeps its value at the leader, and a freshly loaded view (another hub's) shows exactly the live keys.
    for (const id of live) assert.deepEqual(await backend.leaderValue(JOBS_STORE, id), jobs.get(id), id);
    const fresh = await readJobRecords(other);
    assert.deepEqual(fresh.map((r) => r.id).sort(), live);
    assert.deepEqual(jobs.all().map((r) => r.id).sort(), live, 'the running store\'s view is unchanged');

    // The store goes on: one more job prunes one more record, whose marker the next sweep purges.
    await jobs.save(finished('web1', 10));
    await jobs.settled();
    assert.equal(await messages(backend), 7);
    const again = await cli(['--min-age', '1h']);
    assert.deepEqual(again.markers['jobs'], { keys: 7, markers: 1, purged: 0, young: 1, changed: 0, failed: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    const text = await fleet.hubCli(['cluster', 'sweep', '--dry-run', '--min-age', '1s'], 60_000);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /deletion markers older than --min-age \(would be purged\)/);
    assert.match(text.stdout, /\njobs +7 +1 +1 +0 +0 +0/);
    const last = await cli(['--min-age', '1s']);
    assert.deepEqual(last.markers['jobs'], { keys: 7, markers: 1, purged: 1, young: 0, changed: 0, failed: 0 });
    assert.equal(await messages(backend), 6);
    console.log(`purged 12 markers of 18 keys in ${ms} ms (connection, object stores and ${Object.keys(done!.markers).length} buckets included)`);
    await jobs.close();
  } finally {
    await other.close();
    await backend.close();
    await fleet.close();
    await dropPrefix(nats, prefix);
  }
});

test('a key written again between the scan and the purge keeps its new record (the purge is bounded by the marker\'s sequence)', async () => {
  const prefix = freshPrefix('mk');
  const backend = await openBackend(nats, prefix, 'huba');
  const other = await openBackend(nats, prefix, 'hubb');
  try {
    const jobs = await pruned(backend, 1, 4); // 2 markers
    await jobs.close();
    // Another hub's store: the job id used again, created on 0 over its marker (kv-rebase.ts).
    const records = await other.openKeyed<JobRecord>(JOBS_STORE, JOBS_STORE_OPTIONS);
    const bucket = (await backend.kvMarkers(JOBS_STORE))!;
    const reused: string[] = [];
    const r = await sweepMarkers({
      ...bucket, minAgeMs: 0, dryRun: false,
      purgeBelow: async (subject, seq) => {
        if (reused.length === 0) {
          const id = decodeToken(subject.slice(subject.lastIndexOf('.') + 1))!;
          reused.push(id);
          await records.set(id, { ...newJob('web1', 'boot', id), requestedAt: new Date().toISOString() }, { expectRevision: 0 });
        }
        return bucket.purgeBelow(subject, seq);
      },
    });
    assert.deepEqual(r, { keys: 4, markers: 2, purged: 1, young: 0, changed: 1, failed: 0 });
    const id = reused[0]!;
    assert.equal((await backend.leaderValue(JOBS_STORE, id) as JobRecord | null)?.action, 'boot', 'the write after the scan survived the purge');
    const fresh = await readJobRecords(backend);
    assert.deepEqual(fresh.map((x) => x.id).sort(), [...jobs.all().map((x) => x.id), id].sort());
    await records.close();
  } finally {
    await other.close();
    await backend.close();
    await dropPrefix(nats, prefix);
  }
});

test('a create whose key\'s marker a sweep purges between its refusal and its retry is made again on 0, not refused', async () => {
  const prefix = freshPrefix('mk');
  const backend = await openBackend(nats, prefix, 'huba');
  try {
    const jobs = await pruned(backend, 1, 3); // 1 marker
    const bucketName = backend.names.bucket(JOBS_STORE);
    const markers = (await backend.kvMarkers(JOBS_STORE))!;
    let marked: string | null = null;
    for await (const k of markers.scan()) if (k.marker) marked = k.subject;
    assert.ok(marked);
    const id = decodeToken(marked.slice(marked.lastIndexOf('.') + 1))!;
    await jobs.close();
    // A store whose leader lookups purge the key's marker right after reading it (a sweep in that moment).
    const nc = backend.nc;
    const js = jetstream(nc, { timeout: 2000 });
    const real = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
    let sweepNow = false;
    const streams = new Proxy(real.streams, {
      get(t, p) {
        if (p === 'getMessage') {
          return async (stream: string, q: MsgRequest) => {
            const m = await t.getMessage(stream, q);
            if (sweepNow && typeof q === 'object' && 'last_by_subj' in q && q.last_by_subj === marked && m?.header?.get('KV-Operation') === 'DEL') {
              sweepNow = false;
              await t.purge(stream, { filter: marked!, seq: m.seq + 1 });
            }
            return m;
          };
        }
        const v = Reflect.get(t, p) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    const jsm = new Proxy(real, { get: (t, p) => (p === 'streams' ? streams : Reflect.get(t, p)) }) as JetStreamManager;
    const store = await NatsKeyedStore.open<JobRecord>({
      nc, js, jsm, kv: await new Kvm(js).open(bucketName), bucket: bucketName, accept: isJobRecord, progress: JOB_PROGRESS,
      log: silentLogger(), requestTimeoutMs: 2000, writeTimeoutMs: 10_000,
    }, 60_000);
    try {
      sweepNow = true;
      const rev = await store.set(id, { ...newJob('web1', 'boot', id) }, { expectRevision: 0 });
      assert.equal(sweepNow, false, 'the marker was purged between the refusal and the retry');
      assert.ok(rev > 0);
      assert.equal((await backend.leaderValue(JOBS_STORE, id) as JobRecord | null)?.action, 'boot');
    } finally {
      await store.close();
    }
  } finally {
    await backend.close();
    await dropPrefix(nats, prefix);
  }
});
