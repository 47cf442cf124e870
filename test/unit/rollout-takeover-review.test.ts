// Rollouts whose driver changes (a restart, a dead hub of a cluster, resume or
// abort at another hub), on the memory backend with several engines sharing
// one rollout and job store (test/helpers/rollout-world.ts). Each case is a
// bug a review reproduced: the host never switched (F2), the driver moved for
// a refused resume (F4), results never recorded (F1), a turn started after an
// abort never tracked (F3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryState } from '../../hub/store/memory-backend.js';
import { LOCAL_HUB } from '../../hub/holders/local.js';
import { localDriving } from '../../hub/rollout/driver.js';
import { turnJobId } from '../../hub/rollout/records.js';
import { rolloutDetail } from '../../hub/rollout/view.js';
import { clusterDriving, everyHost, options, settle, startsOf, world } from '../helpers/rollout-world.js';

test('F2: resume at a hub other than the one that took the rollout over still gives reconnecting hosts their grace', async () => {
  const state = new MemoryState();
  const w = await world(state, ['a']);
  const alive = new Set(['hub1', 'hub2', 'hub3']);
  const A = w.engine(clusterDriving('hub3', alive));
  const B = w.engine(clusterDriving('hub1', alive));
  const C = w.engine(clusterDriving('hub2', alive));
  await A.start(); await B.start({ reconnectGraceMs: 120_000 }); await C.start({ reconnectGraceMs: 120_000 });
  const r = await A.create({ hosts: ['a', 'b', 'c'], selection: everyHost, options: options() });
  await settle();
  await w.endJob('a', w.store.member(r.id, 'a')!.jobId!, 'failure');
  await settle();
  assert.equal(w.store.get(r.id)!.state, 'halted');
  // hub3 dies; b and c were its agents (reconnecting, connected nowhere yet). hub1 (smallest name) takes it over.
  alive.delete('hub3'); A.close();
  await settle(200);
  assert.equal(w.store.get(r.id)!.driver!.hub, 'hub1', 'the successor took it over by its sweep');
  // The admin resumes at hub2 seconds later, well within the reconnect grace: the driver changes a second time.
  await C.resume(r.id, { retryFailed: false });
  await settle();
  const states = ['b', 'c'].map((h) => w.store.member(r.id, h)?.state ?? 'pending');
  const rr = w.store.get(r.id)!;
  assert.equal(rr.driver!.hub, 'hub2');
  assert.deepEqual(states, ['pending', 'pending'], `b and c (reconnecting) were ${states.join(', ')}; rollout ${rr.state}: ${rr.reason}`);
  // b comes back within the grace: it gets its turn.
  const b = await w.connect('b');
  await settle();
  assert.equal(startsOf(b).length, 1, 'b switched once it reconnected');
  await w.close();
});

test('F4: resume of a running rollout at a non-driving hub is refused without moving the driver; abort of a finished one too', async () => {
  const state = new MemoryState();
  const w = await world(state, ['a', 'b']);
  const alive = new Set(['hub1', 'hub2']);
  const A = w.engine(clusterDriving('hub2', alive));
  const B = w.engine(clusterDriving('hub1', alive));
  await A.start(); await B.start();
  const r = await A.create({ hosts: ['a', 'b'], selection: everyHost, options: options() });
  await settle();
  await assert.rejects(B.resume(r.id, { retryFailed: false }), /only a halted rollout can be resumed/);
  assert.deepEqual(w.store.get(r.id)!.driver, { hub: 'hub2', run: 'run-hub2', epoch: 1 }, 'a refused resume leaves the driver alone');
  // The driver goes on: a's result is recorded and b gets its turn.
  await w.endJob('a', w.store.member(r.id, 'a')!.jobId!, 'success');
  await settle();
  assert.equal(startsOf(w.live.get('b')).length, 1);
  await w.endJob('b', w.store.member(r.id, 'b')!.jobId!, 'success');
  await settle();
  assert.equal(w.store.get(r.id)!.state, 'done');
  await assert.rejects(B.abort(r.id), /already done/);
  await assert.rejects(B.resume(r.id, { retryFailed: false }), /only a halted rollout can be resumed/);
  assert.equal(w.store.get(r.id)!.driver!.epoch, 1);
  await w.close();
});

test('F1: an aborted rollout whose driver restarts still records the result of a job that was running', async () => {
  const state = new MemoryState();
  const w1 = await world(state, ['a', 'b']);
  const e1 = w1.engine(localDriving(LOCAL_HUB));
  await e1.start();
  const r = await e1.create({ hosts: ['a', 'b'], selection: everyHost, options: options({ canary: { n: 2 } }) });
  await settle();
  const jobA = w1.store.member(r.id, 'a')!.jobId!;
  assert.ok(jobA);
  await e1.abort(r.id); // "running jobs finish and are recorded"
  assert.equal(w1.store.get(r.id)!.state, 'aborted');
  await w1.close();

  // The hub restarts (a new run); a's agent comes back still running the job, then ends it.
  const w2 = await world(state, ['a'], { a: { runningJobId: jobA } });
  const e2 = w2.engine(localDriving(LOCAL_HUB));
  await e2.start({ reconnectGraceMs: 0 });
  await settle();
  await w2.endJob('a', jobA, 'failure');
  await settle(300);
  assert.equal(w2.jobs.get(jobA)?.state, 'failure', 'the job record is final');
  const rr = w2.store.get(r.id)!;
  assert.equal(w2.store.member(r.id, 'a')!.state, 'failed', 'rollout status shows the job\'s result');
  assert.equal(rr.state, 'aborted', 'it stays aborted');
  await w2.close();
});

test('F1: a done rollout with a queued host records its late result after a driver restart (no halt: nothing is left to halt)', async () => {
  const state = new MemoryState();
  const w1 = await world(state, ['a']);
  const e1 = w1.engine(localDriving(LOCAL_HUB));
  await e1.start();
  const r = await e1.create({ hosts: ['a', 'b'], selection: everyHost, options: options({ canary: { n: 2 }, offline: 'queue' }) });
  await settle();
  await w1.endJob('a', w1.store.member(r.id, 'a')!.jobId!, 'success');
  await settle();
  assert.equal(w1.store.get(r.id)!.state, 'done');
  const qb = w1.store.member(r.id, 'b')!;
  assert.equal(qb.state, 'queued');
  await w1.close();

  const w2 = await world(state, []);
  const e2 = w2.engine(localDriving(LOCAL_HUB));
  await e2.start({ reconnectGraceMs: 0 });
  const b = await w2.connect('b');
  await settle();
  assert.equal(startsOf(b)[0]?.jobId, qb.jobId, 'the queued job runs when b connects');
  await settle(700); // a job's dispatched record is written after a hold (hub/store/job-writes.ts EVENTUAL_HOLD_MS)
  assert.equal(w2.store.member(r.id, 'b')!.state, 'running');
  await w2.endJob('b', qb.jobId!, 'failure');
  await settle(300);
  const rr = w2.store.get(r.id)!;
  assert.equal(w2.store.member(r.id, 'b')!.state, 'failed', 'b shows its job\'s result');
  assert.equal(rr.state, 'done', 'a done rollout is not halted by a late failure');
  assert.match(rr.reason ?? '', /1 healthy, 1 failed/, 'its summary counts the late result');
  await w2.close();
});

test('F1: the successor records the result of a job of an aborted rollout whose driving hub died', async () => {
  const state = new MemoryState();
  const w = await world(state, ['a', 'b']);
  const alive = new Set(['hub1', 'hub2']);
  const A = w.engine(clusterDriving('hub2', alive));
  const B = w.engine(clusterDriving('hub1', alive));
  await A.start(); await B.start({ reconnectGraceMs: 0 });
  const r = await A.create({ hosts: ['a', 'b'], selection: everyHost, options: options({ canary: { n: 2 } }) });
  await settle();
  await A.abort(r.id);
  alive.delete('hub2'); A.close();
  await settle(200);
  await w.endJob('a', w.store.member(r.id, 'a')!.jobId!, 'success');
  await settle(200);
  assert.equal(w.store.member(r.id, 'a')!.state, 'healthy');
  assert.equal(w.store.get(r.id)!.driver!.hub, 'hub1', 'hub1 took the finished rollout over to record it');
  assert.equal(w.store.member(r.id, 'b')!.state, 'running', 'b\'s job still runs');
  await w.close();
});

test('F3: an abort at another hub while the driver\'s trigger is in flight: the turn that starts late is tracked and recorded', async () => {
  const state = new MemoryState();
  const w = await world(state, ['a', 'b']);
  const alive = new Set(['hub1', 'hub2']);
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let inFlight = false;
  // hub2's path to the scheduler is slow (a routed trigger over NATS to the hub holding the host).
  const A = w.engine(clusterDriving('hub2', alive), { trigger: async (t) => { inFlight = true; await gate; return w.router.trigger(t); } });
  const B = w.engine(clusterDriving('hub1', alive));
  await A.start(); await B.start();
  const r = await A.create({ hosts: ['a', 'b'], selection: everyHost, options: options() });
  await settle();
  assert.ok(inFlight, 'hub2 is triggering a');
  await B.abort(r.id);
  assert.equal(w.store.get(r.id)!.state, 'aborted');
  release();
  await settle(700); // the job's dispatched record is written after a hold (hub/store/job-writes.ts EVENTUAL_HOLD_MS)
  const started = startsOf(w.live.get('a'));
  assert.equal(started.length, 1, 'the trigger already on its way starts the turn');
  const view = () => rolloutDetail(w.store.get(r.id)!, w.store.memberMap(r.id)).members;
  const shown = view().find((m) => m.host === 'a')!;
  assert.equal(shown.state, 'running', 'status shows a running, not cancelled');
  assert.equal(shown.jobId, turnJobId(r, 'a'));
  await w.endJob('a', started[0]!.jobId, 'success');
  await settle(100);
  assert.deepEqual(view().map((m) => [m.host, m.state]), [['a', 'healthy'], ['b', 'cancelled']]);
  assert.equal(w.store.get(r.id)!.state, 'aborted');
  await w.close();
});
