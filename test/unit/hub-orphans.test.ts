// A cluster's orphans (Scheduler.sweepOrphans): jobs a dead hub dispatched,
// for hosts no live hub holds, are interrupted after the grace by the one hub
// that settles orphans, and by no other; a host held somewhere is left to its
// holder. A hub's own open jobs of departed hosts (a verdict it could not
// write) are settled by that hub, unless a guard window still waits. Memory backend, plain objects for the holders (logic only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import type { Holder } from '../../hub/holders/types.js';
import { OrphanSweep } from '../../hub/jobs/orphans.js';
import { BentoError } from '../../common/protocol/errors.js';

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

test('a hub\'s own job whose verdict it could not write (out of touch with NATS when the agent left) is settled by that hub once it can, not by others', async () => {
  const log = silentLogger();
  // The fence as a cluster hub's (cluster/holds.ts stamp): it refuses to stamp while the hub is not current.
  let current = true;
  const fence = {
    stamp: (host: string) => {
      if (!current) throw new BentoError('CLUSTER_UNAVAILABLE', `hub me is not in touch with NATS; it cannot vouch that it holds ${host}`);
      return { hub: 'me', epoch: 3 };
    },
  };
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log, fence });
  await store.save(rec('ownjob0001', 'web1', 'me'));
  const holders = {
    hubName: 'me',
    holder: () => null,
    queuedJobId: () => null,
    settlesOrphans: () => false,
    hubAlive: (name: string) => name === 'me',
  };
  const ends: string[] = [];
  const bus = new LocalEventBus(log);
  bus.subscribe({ all: true }, (e) => { if (e.kind === 'job' && e.event.ev === 'end') ends.push(e.event.jobId); });
  const s = new Scheduler({ store, sessions: { get: () => undefined }, bus, holders, log });
  // What a disconnect leaves when the hub lost NATS: its verdict refused, the record still running.
  current = false;
  const t0 = Date.now();
  s.sweepOrphans(1000, t0);
  s.sweepOrphans(1000, t0 + 1500);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(store.get('ownjob0001')?.state, 'running', 'not written while the hub cannot stamp it');
  assert.deepEqual(ends, []);
  current = true;
  s.sweepOrphans(1000, t0 + 1600);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(store.get('ownjob0001')?.state, 'interrupted', 'tried again at the next sweep, with no new grace, though this hub does not settle others\' orphans');
  assert.match(store.get('ownjob0001')?.reason ?? '', /agent left during the job/);
  assert.deepEqual(ends, ['ownjob0001']);
  s.sweepOrphans(1000, t0 + 5000);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ends, ['ownjob0001'], 'once');
  s.close();
  await store.close();
});

test('a hub\'s own job it still tracks as the host\'s active one (a guard window waits for the agent) is not swept', async () => {
  const log = silentLogger();
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log });
  await store.save(rec('guarded002', 'web1', 'me'));
  await store.save(rec('ownjob0002', 'web2', 'me'));
  const settled: string[] = [];
  const sweep = new OrphanSweep({
    store,
    holders: { hubName: 'me', holder: () => null, settlesOrphans: () => true, hubAlive: () => true },
    sessions: { get: () => undefined },
    activeJob: (host) => (host === 'web1' ? 'guarded002' : undefined),
    settle: async (_host, id) => { settled.push(id); },
    log,
  });
  const t0 = Date.now();
  sweep.sweep(1000, t0);
  sweep.sweep(1000, t0 + 2000);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(settled, ['ownjob0002']);
  sweep.close();
  await store.close();
});
