// A hub's verdict on a job it saw open (interrupted, "not run") is told on
// the event bus only once it stands (hub/jobs/job-end.ts finishWith). The
// verdict is not written over a record that is final by then (its result got
// there first, through another hub or while this hub's view was behind);
// before, its `end: interrupted` event went out anyway, so followers,
// `trigger --wait` and the per-hub metrics counted an interrupted job that had
// succeeded (found by review). An agent's result is still told at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import { JobEnds } from '../../hub/jobs/job-end.js';
import { LocalEventBus } from '../../hub/events/bus.js';

const log = silentLogger();
const running = (id: string): JobRecord => ({ id, host: 'web1', action: 'switch', state: 'running', requestedAt: new Date().toISOString(), startedAt: new Date().toISOString(), endedAt: null, exitCode: null, durationMs: null, reason: null });

test('a verdict on a job whose result is stored already is neither written nor told; one that stands is told', async () => {
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log });
  const bus = new LocalEventBus(log);
  const ends: string[] = [];
  bus.subscribe({ all: true }, (e) => { if (e.kind === 'job' && e.event.ev === 'end') ends.push(`${e.event.jobId}:${e.event.outcome}`); });
  const jobEnds = new JobEnds({
    store, bus, log, adopter: { adopt: async () => undefined } as never, active: new Map(), settled: () => undefined,
    dispatchPending: async () => undefined, later: () => undefined,
  });
  try {
    const done = running('jobdone0001');
    await store.save({ ...done, state: 'success', endedAt: new Date().toISOString(), exitCode: 0, durationMs: 10 });
    // This hub's view of it was behind: it still thinks the job is running.
    await jobEnds.finish(done, { outcome: 'interrupted', reason: 'agent reconnected without this job' });
    assert.equal(store.get(done.id)?.state, 'success', 'the result stays');
    assert.deepEqual(ends, [], 'no end event for a verdict that was not written');

    const open = running('jobopen0001');
    await store.save(open);
    await jobEnds.finish(open, { outcome: 'interrupted', reason: 'the hub restarted' });
    assert.equal(store.get(open.id)?.state, 'interrupted');
    assert.deepEqual(ends, ['jobopen0001:interrupted']);
  } finally {
    await store.close();
  }
});
