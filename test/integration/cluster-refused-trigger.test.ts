// A trigger refused because NATS did not acknowledge its queued record in
// time must not run later (hub/jobs/scheduler.ts triggerNow: "the admin is
// told it failed"). Found by review: the store kept retrying the write in the
// background, and attempts already sent were stored once the server answered,
// so whichever hub the host reached would run it. Now the write is abandoned
// (KeyedStore.abandon) and, if an attempt lands after all, the record is
// deleted (hub/store/late-discards.ts). A real nats-server, frozen with
// SIGSTOP while the write is made, as a server stuck for seconds would be.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import { JOBS_STORE } from '../../hub/store/job-record.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';

let nats: NatsCluster;
before(async () => { nats = await startNatsCluster({ nodes: 1 }); });
after(async () => { await nats?.stop(); });

test('a queued record NATS did not acknowledge in time is given up: it is not in the bucket once the server answers again', async () => {
  const backend = await NatsStateBackend.open(parseClusterOptions({
    servers: nats.urls, hubName: 'hub-a', prefix: 'refused', replicas: 1, requestTimeoutMs: 400, writeTimeoutMs: 1500,
  }), silentLogger());
  const store = await JobStore.open(backend, { history: 10, log: silentLogger() });
  const server = nats.nodes[0]!.daemon!.child;
  try {
    const rec: JobRecord = { id: 'q7_refusedtrigger000000', host: 'web1', action: 'switch', state: 'queued', requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null };
    server.kill('SIGSTOP');
    try {
      await assert.rejects(store.save(rec), (err: Error & { code?: string }) => err.code === 'STATE_WRITE_FAILED');
      store.discard(rec.id); // what the scheduler does before it tells the admin
    } finally {
      server.kill('SIGCONT');
    }
    // The attempts sent while the server was frozen reach it now; the store's retries ran every 2 s before.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    assert.equal(await backend.leaderValue(JOBS_STORE, rec.id), null, 'the refused trigger\'s job is in the bucket: a hub would run it');
    assert.equal(store.get(rec.id), undefined);
  } finally {
    await store.close();
    await backend.close();
  }
});
