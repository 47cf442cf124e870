// Rollout turns when the cluster does not answer: a driver that may not act
// (its heartbeat has not come back: it was frozen by SIGSTOP, or NATS was
// away) writes no rollout record, even from a step that was already under
// way when it stopped (docs/rollouts.md, "Several hubs"): the epoch fence
// compares against this hub's own view, which may not show yet that another
// hub took the rollout over. And a turn whose routed trigger is unconfirmed
// (the holding hub answered too late) is not recorded as failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BentoError } from '../../common/protocol/errors.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { RolloutStore } from '../../hub/rollout/store.js';
import { memberKey, turnJobId, type MemberRecord } from '../../hub/rollout/records.js';
import { clusterDriving, everyHost, options, settle, startsOf, world } from '../helpers/rollout-world.js';

test('a step under way when the driver stopped being current writes nothing when it goes on; once current, the driver records the turn and goes on', async () => {
  const state = new MemoryState();
  const w = await world(state, ['a', 'b']);
  const alive = new Set(['hub1']);
  const driving = clusterDriving('hub1', alive);
  // This hub's own rollout store, which knows whether the hub may write (as hub/daemon.ts opens it).
  const store = await RolloutStore.open(new MemoryBackend(state), { driving });
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let inFlight = false;
  const e = w.engine(driving, { store, trigger: async (t) => { inFlight = true; await gate; return w.router.trigger(t); } });
  await e.start();
  const r = await e.create({ hosts: ['a', 'b'], selection: everyHost, options: options() });
  await settle();
  assert.ok(inFlight, 'the canary a\'s trigger is on its way');
  const before: MemberRecord | undefined = store.member(r.id, 'a');
  assert.equal(before?.state, 'running');
  assert.equal(before?.jobId, null, 'written before the trigger, without its job');
  const stored = () => state.bucket('rollouts').records.get(memberKey(r.id, 'a'))?.json;
  const storedBefore = stored();

  // The hub freezes with the trigger in flight; when it runs again its heartbeat has not come back yet.
  alive.delete('hub1');
  release();
  await settle(400);
  assert.equal(startsOf(w.live.get('a')).length, 1, 'the trigger had left: the job starts');
  assert.equal(stored(), storedBefore, 'a\'s record is not written while the hub may not act');
  assert.deepEqual(store.member(r.id, 'a'), before);
  assert.equal(startsOf(w.live.get('b')).length, 0);
  await assert.rejects(store.save({ ...r, reason: 'late' }), { code: 'CLUSTER_UNAVAILABLE' });
  await assert.rejects(store.forget(r.id, 'a', r.driver!.epoch), { code: 'CLUSTER_UNAVAILABLE' });
  await assert.rejects(store.claim(r, { driver: { hub: 'hub1', run: 'run-hub1' } }), { code: 'CLUSTER_UNAVAILABLE' });
  await assert.rejects(store.prune(), { code: 'CLUSTER_UNAVAILABLE' });
  assert.equal(stored(), storedBefore);

  // Current again: its periodic check finds the turn's job and records it; the rollout goes on.
  alive.add('hub1');
  const deadline = Date.now() + 5000;
  while (store.member(r.id, 'a')?.jobId !== turnJobId(r, 'a') && Date.now() < deadline) await settle(50);
  assert.equal(store.member(r.id, 'a')?.jobId, turnJobId(r, 'a'), 'the turn\'s job is recorded once the hub is current');
  await w.endJob('a', turnJobId(r, 'a'), 'success');
  while (startsOf(w.live.get('b')).length === 0 && Date.now() < deadline) await settle(50);
  assert.equal(startsOf(w.live.get('b')).length, 1, 'b gets its turn');
  await w.close();
  await store.close();
});

test('a turn whose trigger is unconfirmed (the holding hub did not answer in time, but took it) is tracked, not failed', async () => {
  const state = new MemoryState();
  const w = await world(state, ['a', 'b']);
  let first = true;
  // The routed trigger reached the holding hub, which started the job, but its answer came too late (ClusterRouter: TRIGGER_UNCONFIRMED).
  const e = w.engine(clusterDriving('hub1', new Set(['hub1'])), {
    trigger: async (t) => {
      if (!first) return w.router.trigger(t);
      first = false;
      await w.router.trigger(t);
      throw new BentoError('TRIGGER_UNCONFIRMED', `hub hub2 did not answer the trigger of ${t.host} in time and may still have taken it`);
    },
  });
  await e.start();
  const r = await e.create({ hosts: ['a', 'b'], selection: everyHost, options: options() });
  const deadline = Date.now() + 5000;
  while (w.store.member(r.id, 'a')?.jobId !== turnJobId(r, 'a') && Date.now() < deadline) await settle(50);
  const a = w.store.member(r.id, 'a');
  assert.equal(a?.state, 'running', `a is running its turn's job, not ${a?.state}: ${a?.reason}`);
  assert.equal(a?.jobId, turnJobId(r, 'a'));
  assert.equal(startsOf(w.live.get('a')).length, 1, 'a switched once');
  await w.endJob('a', turnJobId(r, 'a'), 'success');
  while (startsOf(w.live.get('b')).length === 0 && Date.now() < deadline) await settle(50);
  assert.equal(w.store.member(r.id, 'a')?.state, 'healthy');
  assert.equal(startsOf(w.live.get('b')).length, 1, 'the rollout went on to b');
  assert.equal(startsOf(w.live.get('a')).length, 1, 'a still switched once');
  await w.close();
});
