// A job queued for a host nobody holds gets the id every hub gives it
// (holds.ts queuedJobId: the host's claim epoch and name), so hubs queueing
// at once make one job. The epoch stays while the host is away: a second job
// queued then (the first one withdrawn by a halted rollout, or the holds
// bucket lost a claim and the epoch went back) must not take the first one's
// id and overwrite its record. Memory backend and a holders stand-in with a
// fixed epoch (the logic); the cluster tests run real hubs on NATS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { freeQueuedId } from '../../hub/jobs/job-ids.js';

const BASE = 'q5_aaaaaaaaaaaaaaaaaaaaaa';

test('a second job queued for an away host under the same claim epoch gets the next free shared id; the first keeps its record', async () => {
  const log = silentLogger();
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log });
  const holders = { hubName: 'hub1', holder: () => null, queuedJobId: () => BASE, settlesOrphans: () => false, hubAlive: () => false, raiseClaim: async () => false };
  const scheduler = new Scheduler({ store, sessions: { get: () => undefined }, bus: new LocalEventBus(log), holders, log });
  try {
    const first = await scheduler.trigger('web1', 'switch', true);
    assert.deepEqual([first.jobId, first.disposition], [BASE, 'queued']);
    assert.equal((await scheduler.trigger('web1', 'boot', true)).jobId, BASE, 'a trigger meanwhile coalesces into it');
    assert.ok(await scheduler.cancelQueued('web1', BASE, 'rollout halted'));
    const second = await scheduler.trigger('web1', 'switch', true);
    assert.deepEqual([second.jobId, second.disposition], ['q5-1_aaaaaaaaaaaaaaaaaaaaaa', 'queued']);
    assert.equal(store.get(BASE)?.state, 'interrupted', 'the withdrawn job keeps its record');
    assert.equal(store.get(BASE)?.reason, 'rollout halted');
    assert.ok(await scheduler.cancelQueued('web1', second.jobId, 'rollout halted'));
    assert.equal((await scheduler.trigger('web1', 'switch', true)).jobId, 'q5-2_aaaaaaaaaaaaaaaaaaaaaa');
  } finally {
    scheduler.close();
    await store.close();
  }
});

test('freeQueuedId: the base while free, then its successors in order; null once 1,000 are taken', () => {
  const taken = new Set<string>();
  assert.equal(freeQueuedId(BASE, (id) => taken.has(id)), BASE);
  taken.add(BASE);
  taken.add('q5-1_aaaaaaaaaaaaaaaaaaaaaa');
  assert.equal(freeQueuedId(BASE, (id) => taken.has(id)), 'q5-2_aaaaaaaaaaaaaaaaaaaaaa');
  assert.equal(freeQueuedId(BASE, () => true), null);
});
