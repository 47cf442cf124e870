// Turns whose trigger landed late (hub/rollout/late.ts, docs/rollouts.md "A
// trigger that lands late"): which jobs count as one (pure), how long a hub
// remembers them, and, on the memory backend with several engines over one
// store (test/helpers/rollout-world.ts), that the job gets into the host's
// record when the hub that drove the finished rollout is gone, and when the
// trigger is of a turn from before a resume.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BentoError } from '../../common/protocol/errors.js';
import { MemoryState } from '../../hub/store/memory-backend.js';
import { LATE_MAX, LATE_TTL_MS, LateTurns, isLateTurn, type LateJob } from '../../hub/rollout/late.js';
import { turnJobId, turnRound, type MemberRecord, type RolloutRecord } from '../../hub/rollout/records.js';
import { newRollout } from '../../hub/rollout/plan.js';
import type { JobRecord } from '../../hub/store/jobs.js';
import { clusterDriving, everyHost, options, settle, startsOf, world } from '../helpers/rollout-world.js';

const T0 = '2026-01-01T00:00:00.000Z';
const LATER = '2026-01-01T00:05:00.000Z';
const rollout = (o: Partial<RolloutRecord> = {}): RolloutRecord => ({ ...newRollout('r-abcd2345', { hosts: ['a', 'b'], selection: everyHost, options: options() }), round: 0, ...o });
const job = (r: Pick<RolloutRecord, 'id' | 'round'>, host: string, o: Partial<LateJob> = {}): LateJob => ({ id: turnJobId(r, host), host, state: 'running', requestedAt: LATER, startedAt: LATER, ...o });
const member = (host: string, o: Partial<MemberRecord>): MemberRecord => ({ kind: 'member', rollout: 'r-abcd2345', host, wave: 0, state: 'running', jobId: null, since: T0, reason: null, health: null, epoch: 1, ...o });

test('isLateTurn: a turn job its host\'s record does not name, that ran or may run', () => {
  const r = rollout();
  assert.equal(isLateTurn(r, undefined, job(r, 'a')), true, 'no record (forgotten, or cancelled by an abort)');
  assert.equal(isLateTurn(r, undefined, job(r, 'a', { state: 'queued', startedAt: null })), true, 'queued: may run');
  assert.equal(isLateTurn(r, undefined, job(r, 'a', { state: 'success' })), true, 'ran and ended');
  assert.equal(isLateTurn(r, undefined, job(r, 'a', { state: 'interrupted', startedAt: null })), false, 'withdrawn before it ran');
  assert.equal(isLateTurn(r, member('a', { state: 'skipped' }), job(r, 'a')), true, 'skipped after the turn was forgotten');
  assert.equal(isLateTurn(r, member('a', { state: 'cancelled' }), job(r, 'a')), true, 'cancelled by an abort while waited for');
  assert.equal(isLateTurn(r, member('a', { state: 'running' }), job(r, 'a')), false, 'about to be triggered: the driver finds it');
  assert.equal(isLateTurn(r, member('a', { state: 'failed' }), job(r, 'a')), false);
  assert.equal(isLateTurn(r, member('a', { state: 'running', jobId: 'other' }), job(r, 'a')), false, 'its record names a job');
  assert.equal(isLateTurn(r, undefined, job(r, 'zz')), false, 'not a host of the rollout');
  assert.equal(isLateTurn(r, undefined, { ...job(r, 'a'), host: 'b' }), false, 'another host\'s turn id');
  assert.equal(isLateTurn(r, undefined, job({ id: r.id, round: 1 }, 'a')), false, 'a round that has not begun');
});

test('isLateTurn: a turn from before a resume counts only when its job was requested after the resume', () => {
  const r = rollout({ round: 2, resumed: { round: 2, at: T0 } });
  assert.equal(isLateTurn(r, undefined, job({ id: r.id, round: 1 }, 'a')), true, 'round 1, requested after the resume: a late trigger');
  assert.equal(isLateTurn(r, undefined, job({ id: r.id, round: 0 }, 'a')), true, 'an older round too');
  assert.equal(isLateTurn(r, undefined, job({ id: r.id, round: 1 }, 'a', { requestedAt: '2025-12-31T23:59:00.000Z', state: 'failure' })), false,
    'requested before the resume: a result the rollout knew (a failed host retried), not a late trigger');
  assert.equal(isLateTurn({ ...r, resumed: { round: 1, at: T0 } }, undefined, job({ id: r.id, round: 1 }, 'a')), false, 'resumed at an older hub (no time for this round): not adopted');
  assert.equal(isLateTurn({ ...r, resumed: undefined }, undefined, job({ id: r.id, round: 1 }, 'a')), false);
  assert.equal(isLateTurn(r, undefined, job(r, 'a', { requestedAt: '2025-12-31T23:59:00.000Z' })), true, 'the current round needs no time');
});

test('turnRound reads the round of a turn job id of that rollout only', () => {
  assert.equal(turnRound(turnJobId({ id: 'r-abcd2345', round: 12 }, 'a'), 'r-abcd2345'), 12);
  assert.equal(turnRound(turnJobId({ id: 'r-abcd2345' }, 'a'), 'r-abcd2345'), 0);
  assert.equal(turnRound(turnJobId({ id: 'r-abcd2345', round: 1 }, 'a'), 'r-abcd2346'), null);
  assert.equal(turnRound('r-abcd2345-x-yyyy', 'r-abcd2345'), null);
  assert.equal(turnRound('8ZcQ2mT0aX1bY3cD', 'r-abcd2345'), null);
});

test('LateTurns: at most LATE_MAX remembered (the oldest go), each until adopted, gone, or LATE_TTL_MS old', () => {
  const late = new Set<string>();
  const rec = (id: string): JobRecord => ({ id, host: 'a', action: 'switch', state: 'running', requestedAt: T0, startedAt: T0, endedAt: null, exitCode: null, durationMs: null, reason: null });
  const known = new Map<string, JobRecord>();
  const t = new LateTurns({
    lateTurn: (j) => (late.has(j.id) ? { id: 'r-1', host: j.host } : undefined),
    turnOf: () => undefined,
    jobs: { get: (id) => known.get(id), all: () => [...known.values()] },
  });
  for (let i = 0; i < LATE_MAX + 5; i++) {
    const id = `j${i}`;
    known.set(id, rec(id));
    late.add(id);
    t.seen(rec(id), 1000 + i);
  }
  assert.equal(t.size, LATE_MAX);
  t.review(2000);
  assert.equal(t.of('r-1').length, LATE_MAX);
  assert.equal(t.of('r-1')[0]!.jobId, 'j5', 'the five oldest went');
  late.delete('j5'); // adopted: the rollout's record names it now
  known.delete('j6'); // pruned from the job records
  t.review(2000);
  assert.equal(t.of('r-1').length, LATE_MAX - 2);
  t.review(1000 + LATE_TTL_MS + 10);
  assert.equal(t.of('r-1').length, LATE_MAX - 5, 'older than the TTL: dropped (j7 to j9)');
  t.review(1000 + LATE_TTL_MS + LATE_MAX + 10);
  assert.equal(t.size, 0);
});

test('an aborted rollout whose hub is gone when a trigger lands late: the successor takes it over and records the job', async () => {
  const state = new MemoryState();
  const w = await world(state, ['a', 'b']);
  const alive = new Set(['hub1', 'hub2', 'hub3']);
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  // hub2 drives; its trigger of a is slow (routed over NATS to the hub holding a).
  const A = w.engine(clusterDriving('hub2', alive), { trigger: async (t) => { await gate; return w.router.trigger(t); } });
  const B = w.engine(clusterDriving('hub1', alive));
  const C = w.engine(clusterDriving('hub3', alive));
  await A.start(); await B.start(); await C.start();
  const r = await A.create({ hosts: ['a', 'b'], selection: everyHost, options: options() });
  await settle();
  await B.abort(r.id); // hub1 drives now: a's turn is forgotten (no job yet), then cancelled by the abort
  assert.equal(w.store.get(r.id)!.state, 'aborted');
  assert.equal(w.store.member(r.id, 'a'), undefined);
  alive.delete('hub1'); // gone before the job record appears
  alive.delete('hub2');
  release();
  const deadline = Date.now() + 5000;
  while (w.store.member(r.id, 'a')?.jobId !== turnJobId(r, 'a') && Date.now() < deadline) await settle(50);
  assert.equal(startsOf(w.live.get('a')).length, 1, 'the trigger on its way started the turn');
  assert.equal(w.store.member(r.id, 'a')?.state, 'running', 'a shows running, not cancelled');
  assert.equal(w.store.get(r.id)!.driver!.hub, 'hub3', 'hub3 (the only live hub) took the finished rollout over for it');
  await w.endJob('a', turnJobId(r, 'a'), 'success');
  while (w.store.member(r.id, 'a')?.state !== 'healthy' && Date.now() < deadline) await settle(50);
  assert.equal(w.store.member(r.id, 'a')?.state, 'healthy');
  assert.equal(w.store.get(r.id)!.state, 'aborted', 'it stays aborted');
  await w.close();
});

test('a trigger from before a resume that lands after it is recorded; a failed host retried is not given its old job back', async () => {
  const state = new MemoryState();
  const w = await world(state, ['a', 'b']);
  const alive = new Set(['hub1', 'hub2']);
  // The hub holding a is frozen: each trigger of a is unanswered (TRIGGER_UNCONFIRMED) and lands when released.
  const held: Array<() => Promise<unknown>> = [];
  const A = w.engine(clusterDriving('hub2', alive), {
    trigger: async (t) => {
      if (t.host !== 'a') return w.router.trigger(t);
      held.push(() => w.router.trigger(t));
      throw new BentoError('TRIGGER_UNCONFIRMED', `hub hub3 did not answer the trigger of ${t.host} in time`);
    },
  });
  const B = w.engine(clusterDriving('hub1', alive));
  await A.start(); await B.start();
  const r = await A.create({ hosts: ['a', 'b'], selection: everyHost, options: options({ canary: { n: 2 } }) });
  await settle();
  const bJob = turnJobId(r, 'b');
  await w.endJob('b', bJob, 'failure');
  await settle(100);
  assert.equal(w.store.get(r.id)!.state, 'halted', 'b failed; a\'s trigger is still on its way');
  // Both hosts are offline when the admin resumes at hub1 (a turn of round 1 would be a new job): skipped.
  w.live.delete('a'); w.live.delete('b');
  await B.resume(r.id, { retryFailed: true });
  await settle(100);
  const rr = w.store.get(r.id)!;
  assert.equal(rr.round, 1);
  assert.equal(rr.state, 'done');
  assert.deepEqual(['a', 'b'].map((h) => [h, w.store.member(r.id, h)?.state, w.store.member(r.id, h)?.jobId]), [['a', 'skipped', null], ['b', 'skipped', null]]);
  alive.delete('hub2');
  await w.connect('a');
  assert.ok(held.length >= 1);
  await held[0]!(); // the round-0 trigger of a lands now
  const deadline = Date.now() + 5000;
  while (w.store.member(r.id, 'a')?.jobId !== turnJobId(r, 'a') && Date.now() < deadline) await settle(50);
  assert.equal(w.store.member(r.id, 'a')?.jobId, turnJobId(r, 'a'), 'a\'s round-0 job is its record');
  assert.equal(w.store.member(r.id, 'a')?.state, 'running');
  await w.endJob('a', turnJobId(r, 'a'), 'success');
  while (w.store.member(r.id, 'a')?.state !== 'healthy' && Date.now() < deadline) await settle(50);
  assert.equal(w.store.member(r.id, 'a')?.state, 'healthy');
  await settle(100);
  assert.match(w.store.get(r.id)!.reason ?? '', /1 healthy/, 'the done summary counts it');
  assert.equal(w.store.lateTurn(w.jobs.get(bJob)!), undefined, 'b\'s failed round-0 job, requested before the resume, is not a late turn');
  assert.equal(w.store.member(r.id, 'b')?.state, 'skipped');
  await w.close();
});
