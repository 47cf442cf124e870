// kill -9 of a NATS server on Debian's nats-server 2.9.10, and a hub's job
// records afterwards (the soak's NATS-kill finding, docs/cluster.md "Soak").
//
// What the server does (test/soak/nats-diverge.ts shows it with the client
// library alone): a replica restarted after kill -9 miscounts the publishes
// that were refused when applied (the stream-wide "expected last sequence"
// the CAS guard sends below 2.9.21), and numbers every later record of the
// stream differently from the other replicas. A hub whose bucket watch runs
// on that replica holds its records under revisions the leader does not
// know: before the fix every compare-and-swap after a record's create was
// refused ("changed since revision r"), so a job's later writes (running,
// the result) never landed while creates did.
//
// Here: racing guarded publishes while a follower of the jobs stream is down,
// restart it, then a hub whose jobs watch runs on that replica writes jobs
// the way the scheduler does (create, running, result). Every write must
// resolve, and every result be in the bucket, read from the stream leader
// and through a fresh connection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import type { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { JobStore, JOBS_STORE, isJobRecord, readJobRecords, type JobRecord } from '../../hub/store/jobs.js';
import type { KeyedStore } from '../../hub/store/types.js';
import { sleep } from '../helpers/proc.js';
import { killFollowerUnderRace, openDivergeRig, placeWatchOn } from './cluster-diverge-helpers.js';

const PREFIX = 'nk';
const STREAM = `KV_${PREFIX}_jobs`;
const log = silentLogger();

test('kill -9 of a NATS server (2.9.10 renumbers the restarted replica): a hub watching that replica still lands every job write', { timeout: 120_000 }, async () => {
  const rig = await openDivergeRig({ prefix: PREFIX, log, options: { outputMaxBytes: 16 * 1024 * 1024 } });
  const { cluster, nc, jsm } = rig;
  try {
    await (await rig.a.openKeyed<JobRecord>(JOBS_STORE, { accept: isJobRecord })).settled(); // the bucket exists

    // A follower of the jobs stream goes down while guarded writes race, and comes back; then a hub whose
    // jobs watch runs on the restarted replica (the server places the watch: reopen until it is there) checks
    // that replica numbers records otherwise than the leader. The server does not always diverge: try again.
    let hub: { b: NatsStateBackend; s: KeyedStore<JobRecord>; store: JobStore } | null = null;
    const attempts: string[] = [];
    for (let attempt = 1; attempt <= 4 && !hub; attempt++) {
      const { node: f, refused } = await killFollowerUnderRace({ cluster, nc, bucket: `${PREFIX}_jobs` });
      const fname = cluster.nodes[f]!.name;
      const placed = await placeWatchOn({
        jsm, stream: STREAM, name: fname, tries: 15,
        open: (i) => rig.openWithStore(`hub-b${attempt}-${i}`, JOBS_STORE, isJobRecord),
      });
      if (!placed) { attempts.push(`${fname}: no watch placed there`); continue; }
      const store = new JobStore({ records: placed.s, output: await placed.b.openOutput(), history: 100, log, fence: { stamp: () => ({ hub: 'hub-b', epoch: 1 }) } });
      const probe: JobRecord = { id: `probe${attempt}0000000000`, host: 'probe', action: 'switch', state: 'dispatched', requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null };
      await store.save(probe);
      const atLeader = (await jsm.streams.getMessage(STREAM, { last_by_subj: `$KV.${PREFIX}_jobs.${probe.id}` }))!.seq;
      let inView = 0;
      // The watch delivers the probe under that replica's numbering (an ack at or below the watch's position is not applied).
      for (let i = 0; i < 100 && ((inView = placed.s.entry(probe.id)?.revision ?? 0) === 0 || inView === atLeader); i++) await sleep(100);
      attempts.push(`${fname}: ${refused} refused when applied; probe at ${inView} there, ${atLeader} at the leader`);
      if (inView !== 0 && inView !== atLeader) hub = { ...placed, store };
      else await placed.b.close();
    }
    console.log(`# ${attempts.join('; ')}`);
    assert.ok(hub, `nats-server never renumbered the restarted replica, so the scenario did not happen: ${attempts.join('; ')}`);
    const store = hub.store;

    // Jobs as the scheduler writes them: create, running (not awaited there), the result.
    const jobs = Array.from({ length: 12 }, (_, i): JobRecord => ({
      id: `job${String(i).padStart(13, '0')}`, host: `h${i}`, action: 'switch', state: 'dispatched',
      requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null,
    }));
    const t0 = Date.now();
    const outcomes = await Promise.allSettled(jobs.map(async (j) => {
      await store.save(j);
      const startedAt = new Date().toISOString();
      await store.save({ ...j, state: 'running', startedAt });
      await store.save({ ...j, state: 'success', startedAt, endedAt: new Date().toISOString(), exitCode: 0, durationMs: 1 });
    }));
    const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [`${jobs[i]!.id}: ${(o.reason as Error).message}`] : []));
    console.log(`# 12 jobs written (3 writes each) in ${Date.now() - t0} ms; ${failed.length} failed`);
    assert.deepEqual(failed, [], 'every job write resolved');
    await store.settled();

    // Every result is in the bucket: as the leader holds it, and through a fresh connection.
    for (const j of jobs) {
      const m = await jsm.streams.getMessage(STREAM, { last_by_subj: `$KV.${PREFIX}_jobs.${j.id}` });
      assert.equal((m?.json<JobRecord>())?.state, 'success', `leader's record of ${j.id}`);
    }
    const reader = await rig.open('reader');
    const fresh = new Map((await readJobRecords(reader)).map((r) => [r.id, r.state]));
    assert.deepEqual(jobs.map((j) => fresh.get(j.id)), jobs.map(() => 'success'), 'a fresh connection reads every result');
  } finally {
    await rig.close();
  }
});
