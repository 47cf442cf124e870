// A job record this hub could not write in time, which another hub then
// carried on (hub/store/job-writes.ts `retried`). Found by review: hub1
// coalesced a trigger into a queued job and saved it; NATS did not
// acknowledge in time (the store retries such a write, and drops the retry
// once the record moves on); the host went to hub2, which ran the job to
// `success`. hub1 kept showing its own `queued` write for good, and when the
// host later came to hub1 it sent the finished job again and overwrote its
// final record. The memory backend stands in for the bucket; a wrapper
// refuses the chosen write the way the NATS store reports one it could not
// get acknowledged in time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { JOBS_STORE, JOBS_STORE_OPTIONS, type JobRecord } from '../../hub/store/job-record.js';
import type { KeyedStore } from '../../hub/store/types.js';
import { refusingWrites } from '../helpers/refusing-store.js';

const log = silentLogger();
const ID = 'q5_superseded0000000000';

function queued(): JobRecord {
  return { id: ID, host: 'web1', action: 'switch', state: 'queued', hub: 'hub1', epoch: 5, requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null };
}

/** RECORDS, whose writes fail (not applied) while `failing` says so, as a NATS store's past their deadline. */
function flaky(records: KeyedStore<JobRecord>): { records: KeyedStore<JobRecord>; fail: (on: boolean) => void } {
  let failing = false;
  return { records: refusingWrites(records, () => failing), fail: (on) => { failing = on; } };
}

test('a write NATS did not acknowledge, of a record another hub then carries on, stops showing: the stored record is read, and the job is no longer open here', async () => {
  const mem = new MemoryBackend(new MemoryState());
  // One bucket, two hubs: hub1 writes through the wrapper, hub2 straight (its writes reach hub1's watch).
  const bucket = await mem.openKeyed<JobRecord>(JOBS_STORE, JOBS_STORE_OPTIONS);
  const { records, fail } = flaky(bucket);
  const hub1 = new JobStore({ records, output: await mem.openOutput(), history: 10, log, fence: { stamp: () => ({ hub: 'hub1', epoch: 5 }) } });
  const hub2 = new JobStore({ records: bucket, output: await mem.openOutput(), history: 10, log, fence: { stamp: () => ({ hub: 'hub2', epoch: 6 }) } });
  await hub1.load();
  await hub2.load();
  try {
    await hub1.save(queued());
    // A second trigger coalesces into it (now a boot); NATS does not acknowledge in time.
    fail(true);
    await assert.rejects(hub1.save({ ...queued(), action: 'boot' }), /did not acknowledge/);
    fail(false);
    assert.equal(hub1.get(ID)?.action, 'boot', 'shown while the store retries it');

    // The host went to hub2, which ran the queued job to the end.
    const now = new Date().toISOString();
    await hub2.save({ ...queued(), state: 'success', startedAt: now, endedAt: now, exitCode: 0, durationMs: 1 });
    const seen = hub1.get(ID);
    assert.deepEqual([seen?.state, seen?.hub, seen?.epoch], ['success', 'hub2', 6], 'hub1 reads the record hub2 wrote, not its dropped write');
    assert.deepEqual(hub1.openFor('web1').map((j) => j.id), [], 'nothing open for web1 at hub1: its next hello sends nothing');
  } finally {
    await hub1.close();
    await hub2.close();
    await mem.close();
  }
});
