// JobStore.discard after a failed first write: it removes only this hub's own
// record, never another hub's under the same id. A queued job's id is shared
// by every hub (derived from the host and its epoch), so a hub whose queue
// write was refused (the host's new holder had dispatched that job already)
// deleted the other hub's live record: the soak's "ran but recorded
// otherwise" with a deletion marker in NATS. Logic on the memory backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';

const log = silentLogger();
const job = (state: JobRecord['state']): JobRecord => ({
  id: 'q1_sharedqueuedjobid00', host: 'web1', action: 'switch', state, requestedAt: '2026-01-01T00:00:00.000Z',
  startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null,
});

test('discard after a refused first write leaves another hub\'s record of the same id alone', async () => {
  const state = new MemoryState();
  // hub2 holds web1 under epoch 2 and has dispatched the shared queued job.
  const hub2 = await JobStore.open(new MemoryBackend(state), { history: 10, log, fence: { stamp: () => ({ hub: 'hub2', epoch: 2 }) } });
  await hub2.save(job('dispatched'));
  await hub2.close();
  // hub3's view still says epoch 1: its queue write of the same id is refused, and the trigger discards it.
  const hub3 = await JobStore.open(new MemoryBackend(state), { history: 10, log, fence: { stamp: () => ({ hub: 'hub3', epoch: 1 }) } });
  await assert.rejects(hub3.save(job('queued')), /held by hub hub2/);
  hub3.discard(job('queued').id);
  await hub3.settled();
  const stored = state.bucket('jobs').records.get(job('queued').id);
  assert.ok(stored, 'hub2\'s record is still there');
  assert.deepEqual({ ...JSON.parse(stored.json) }, { ...job('dispatched'), hub: 'hub2', epoch: 2 });
  assert.equal(hub3.get(job('queued').id)?.state, 'dispatched', 'and hub3 shows it');
  await hub3.close();
});

test('discard after a failed first write that landed after all removes this hub\'s own record', async () => {
  const state = new MemoryState();
  const hub = await JobStore.open(new MemoryBackend(state), { history: 10, log });
  state.failWrites = 'no space left on device';
  await assert.rejects(hub.save(job('queued')));
  state.failWrites = null;
  await hub.settled(); // the store's own retry lands it
  for (let i = 0; i < 100 && !state.bucket('jobs').records.has(job('queued').id); i++) await new Promise((r) => setTimeout(r, 20));
  hub.discard(job('queued').id);
  await hub.settled();
  for (let i = 0; i < 100 && state.bucket('jobs').records.has(job('queued').id); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(state.bucket('jobs').records.has(job('queued').id), false, 'the admin was told it failed: it must not run later');
  assert.equal(hub.get(job('queued').id), undefined);
  await hub.close();
});
