// withinDeadline (hub/cluster/deadline.ts), behind a bucket's first load and
// a watch's start: the value when it comes in time; the caller's error when
// it does not; a value that comes late goes to onLate (a watch started after
// its deadline must be stopped, or it would follow the bucket forever
// unseen), and one that came in time never does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withinDeadline } from '../../hub/cluster/deadline.js';
import { BentoError } from '../../common/protocol/errors.js';

test('a promise settled in time gives its value, and onLate is never called', async () => {
  const late: number[] = [];
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  assert.equal(await withinDeadline(Promise.resolve(7), 60_000, () => new Error('late'), (v) => late.push(v)), 7);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(late, []);
  // The deadline is cleared once the race is decided: one left running would hold a hub's exit for its whole span.
  assert.equal(timers(), before);
});

test('a rejection in time is passed on as it is, not replaced by the deadline error', async () => {
  const own = new Error('own');
  await assert.rejects(withinDeadline(Promise.reject(own), 60_000, () => new Error('late')), (e) => e === own);
});

test('past the deadline it rejects with the caller\'s error; the value that still comes goes to onLate', async () => {
  let resolve!: (v: { stopped: boolean }) => void;
  const slow = new Promise<{ stopped: boolean }>((r) => { resolve = r; });
  const waited = withinDeadline(slow, 20, () => new BentoError('CLUSTER_UNAVAILABLE', 'not within 20 ms'), (w) => { w.stopped = true; });
  await assert.rejects(waited, (e) => e instanceof BentoError && e.code === 'CLUSTER_UNAVAILABLE' && e.message === 'not within 20 ms');
  const watch = { stopped: false };
  resolve(watch);
  await slow;
  await new Promise((r) => setImmediate(r));
  assert.equal(watch.stopped, true);
});

test('a late rejection is swallowed: no unhandled rejection once the deadline won', async () => {
  let reject!: (e: Error) => void;
  const slow = new Promise<void>((_, r) => { reject = r; });
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => { unhandled.push(e); };
  process.on('unhandledRejection', onUnhandled);
  try {
    await assert.rejects(withinDeadline(slow, 10, () => new Error('deadline'), () => undefined), /deadline/);
    reject(new Error('too late'));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
