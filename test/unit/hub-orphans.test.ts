// A cluster's orphans (Scheduler.sweepOrphans): jobs a dead hub dispatched,
// for hosts no live hub holds, are interrupted after the grace by the one hub
// that settles orphans, and by no other; a host held somewhere is left to its
// holder. Memory backend, plain objects for the holders (logic only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import type { Holder } from '../../hub/holders/types.js';

function rec(id: string, host: string, hub: string | undefined): JobRecord {
  return { id, host, action: 'switch', state: 'running', requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null, ...(hub ? { hub, epoch: 3 } : {}) };
}

test('a dead hub\'s open jobs are interrupted after the grace, once, by the hub that settles orphans', async () => {
  const log = silentLogger();
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log });
  await store.save(rec('orphan0001', 'web1', 'dead-hub'));
  await store.save(rec('heldjob001', 'web2', 'other-hub'));
  await store.save(rec('legacy0001', 'web3', undefined));
  // A live hub's job whose host it no longer holds (a guarded switch kept open after the connection dropped).
  await store.save(rec('guarded001', 'web4', 'live-hub'));
  let settles = false;
  const held = new Set(['web2']);
  const holders = {
    hubName: 'me',
    holder: (h: string) => (held.has(h) ? { host: h, hub: 'other-hub', local: false } as Holder : null),
    queuedJobId: () => null,
    settlesOrphans: () => settles,
    hubAlive: (name: string) => name === 'live-hub',
  };
  const ends: string[] = [];
  const bus = new LocalEventBus(log);
  bus.subscribe({ all: true }, (e) => { if (e.kind === 'job' && e.event.ev === 'end') ends.push(e.event.jobId); });
  const s = new Scheduler({ store, sessions: { get: () => undefined }, bus, holders, log });
  const t0 = Date.now();
  s.sweepOrphans(1000, t0);
  s.sweepOrphans(1000, t0 + 2000);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ends, [], 'not the hub that settles orphans: nothing');
  settles = true;
  s.sweepOrphans(1000, t0 + 500);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ends, [], 'within the grace: nothing');
  s.sweepOrphans(1000, t0 + 1500);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ends, ['orphan0001'], 'only the orphan; the held host\'s job, a live hub\'s job and a single hub\'s record are not this sweep\'s');
  assert.equal(store.get('guarded001')?.state, 'running', 'a live hub settles its own jobs (found by review: its guard window outlasted the grace)');
  assert.equal(store.get('orphan0001')?.state, 'interrupted');
  assert.match(store.get('orphan0001')?.reason ?? '', /dead-hub.*has not reconnected/);
  s.sweepOrphans(1000, t0 + 5000);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ends, ['orphan0001'], 'once');
  s.close();
  await store.close();
});
