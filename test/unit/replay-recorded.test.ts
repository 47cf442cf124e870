// An agent replays a result (its ack was lost: the hub that recorded it died)
// at another hub whose view of the job record has not caught up. Before, that
// hub saw the job running, wrote the result again (a second end time) and
// told its end again, so bento_jobs_total counted the job at two hubs
// (docs/web.md). Now a replay the view does not show recorded is looked up at
// the store itself (KeyedStore.latest: a cluster's stream leader) first.
// Two hubs' job stores over one memory store, hub B's view held back as a
// cluster hub's lags (test/helpers/lagging-view.ts); the real-NATS case is
// test/integration/cluster-replay-counted.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Hello, HubMessage, JobEnd } from '../../common/protocol/messages.js';
import { BentoError } from '../../common/protocol/errors.js';
import { silentLogger } from '../../common/platform/log.js';
import { newJobIdBody } from '../../common/protocol/names.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JOBS_STORE, JOBS_STORE_OPTIONS, JobStore, type JobRecord } from '../../hub/store/jobs.js';
import type { KeyedStore } from '../../hub/store/types.js';
import { JobEnds, recordedAs } from '../../hub/jobs/job-end.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { laggingView } from '../helpers/lagging-view.js';
import { captureLog } from '../helpers/log-capture.js';
import { waitFor } from '../helpers/proc.js';

interface FakeSession { name: string; hello: Hello | null; closed: boolean; sent: HubMessage[]; send(m: HubMessage): boolean }
const session = (name: string): FakeSession => ({ name, hello: null, closed: false, sent: [], send(m) { this.sent.push(m); return true; } });

const running = (): JobRecord => ({
  id: newJobIdBody(), host: 'web1', action: 'switch', state: 'running', requestedAt: new Date().toISOString(),
  startedAt: new Date().toISOString(), endedAt: null, exitCode: null, durationMs: null, reason: null,
});
const result = (rec: JobRecord): JobEnd => ({ type: 'job.end', jobId: rec.id, action: 'switch', outcome: 'success', exitCode: 0, startedAt: rec.startedAt!, durationMs: 5 });

/** Hub A on the store itself, hub B on a view of it that can lag; B's reads at the store are counted, and fail while `failing`. */
async function twoHubs() {
  const mem = new MemoryBackend();
  const bucket = await mem.openKeyed<JobRecord>(JOBS_STORE, JOBS_STORE_OPTIONS);
  const view = laggingView(bucket);
  const at = { reads: 0, failing: false };
  const records = new Proxy(view, {
    get(t, p, r) {
      if (p === 'latest') {
        return (k: string) => { at.reads++; return at.failing ? Promise.reject(new BentoError('CLUSTER_UNAVAILABLE', 'the stream leader did not answer')) : t.latest(k); };
      }
      const v = Reflect.get(t, p, r) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  }) as KeyedStore<JobRecord>;
  const captured = captureLog('warn');
  const a = new JobStore({ records: bucket, output: await mem.openOutput(), history: 10, log: silentLogger() });
  const b = new JobStore({ records, output: await mem.openOutput(), history: 10, log: silentLogger() });
  await a.load();
  await b.load();
  const hub = (store: JobStore, log = silentLogger()) => {
    const bus = new LocalEventBus(log);
    const ends: string[] = [];
    // What bento_jobs_total counts: this hub's own end events (hub/metrics/hub-metrics.ts).
    bus.subscribe({ local: true }, (e) => { if (e.kind === 'job' && e.event.ev === 'end') ends.push(`${e.event.jobId}:${e.event.outcome}`); });
    const jobEnds = new JobEnds({
      store, bus, log, adopter: { adopt: async () => undefined }, active: new Map(), settled: () => undefined,
      dispatchPending: async () => undefined, later: () => undefined,
    });
    return { store, ends, jobEnds };
  };
  const A = hub(a);
  const B = hub(b, captured.log);
  return {
    bucket, view, at, A, B, warnings: captured.lines,
    /** A job running, saved at hub A and seen by hub B (before a test holds B's view back). */
    async runningSeenByB(): Promise<JobRecord> {
      const rec = running();
      await A.store.save(rec);
      await waitFor('B sees the job running', () => B.store.get(rec.id) ?? null, 2000);
      return rec;
    },
    close: async () => { await a.close(); await b.close(); await mem.close(); },
  };
}

test('recordedAs: ended with the same outcome, exit code and reason', () => {
  const rec: JobRecord = { ...running(), state: 'failure', endedAt: new Date().toISOString(), exitCode: 2, reason: 'build failed' };
  const msg = { outcome: 'failure' as const, exitCode: 2, reason: 'build failed' };
  assert.equal(recordedAs(rec, msg), true);
  assert.equal(recordedAs(undefined, msg), false);
  assert.equal(recordedAs({ ...rec, exitCode: 1 }, msg), false);
  assert.equal(recordedAs({ ...rec, reason: null }, msg), false);
  assert.equal(recordedAs({ ...rec, reason: null }, { ...msg, reason: undefined }), true, 'no reason is a null one');
  assert.equal(recordedAs({ ...rec, state: 'interrupted' }, msg), false);
  assert.equal(recordedAs({ ...rec, endedAt: null }, msg), false);
});

test('a replayed result the store holds already, which this hub\'s view does not show yet, is acknowledged without being written or counted again', async () => {
  const w = await twoHubs();
  try {
    const rec = await w.runningSeenByB();
    w.view.hold();
    // Hub A records the result (durable), and dies before its ack reaches the agent.
    await w.A.jobEnds.onJobEnd(session('web1'), result(rec));
    const stored = w.bucket.entry(rec.id)!;
    assert.equal(stored.value.state, 'success');
    assert.equal(w.B.store.get(rec.id)?.state, 'running', 'B\'s view is behind');
    const s = session('web1');
    const replay = w.B.jobEnds.onJobEnd(s, { ...result(rec), replayed: true });
    // On the old code B writes, and its write waits for B's view: let the view catch up a moment later.
    const later = setTimeout(() => w.view.release(), 300);
    await replay;
    clearTimeout(later);
    w.view.release();
    assert.deepEqual(s.sent, [{ type: 'job.ack', jobId: rec.id }]);
    assert.deepEqual(w.B.ends, [], 'B counts no end: A counted it');
    assert.deepEqual(w.bucket.entry(rec.id), stored, 'not written again (same revision, same end time)');
    assert.equal(w.at.reads, 1);
  } finally {
    await w.close();
  }
});

test('a fresh result pays no read at the store, nor a replay the view shows recorded', async () => {
  const w = await twoHubs();
  try {
    const rec = await w.runningSeenByB();
    const s = session('web1');
    await w.B.jobEnds.onJobEnd(s, result(rec));
    assert.deepEqual(w.B.ends, [`${rec.id}:success`]);
    await w.B.jobEnds.onJobEnd(s, { ...result(rec), replayed: true });
    assert.deepEqual(s.sent.map((m) => m.type), ['job.ack', 'job.ack']);
    assert.deepEqual(w.B.ends, [`${rec.id}:success`], 'counted once');
    assert.equal(w.at.reads, 0);
  } finally {
    await w.close();
  }
});

test('the store does not answer: the replay is recorded and counted as before, and that is logged', async () => {
  const w = await twoHubs();
  try {
    const rec = await w.runningSeenByB();
    w.view.hold();
    await w.A.jobEnds.onJobEnd(session('web1'), result(rec));
    const first = w.bucket.entry(rec.id)!;
    w.at.failing = true;
    const s = session('web1');
    const replay = w.B.jobEnds.onJobEnd(s, { ...result(rec), replayed: true });
    await waitFor('B asked the store', () => w.at.reads === 1 || null, 2000);
    setTimeout(() => w.view.release(), 50);
    await replay;
    assert.deepEqual(s.sent, [{ type: 'job.ack', jobId: rec.id }], 'acknowledged once written');
    assert.deepEqual(w.B.ends, [`${rec.id}:success`]);
    assert.ok(w.bucket.entry(rec.id)!.revision > first.revision, 'written again');
    assert.equal(w.bucket.get(rec.id)?.state, 'success');
    assert.ok(w.warnings().some((l) => l['jobId'] === rec.id && String(l['msg']).includes('cannot read the job record at the store')), JSON.stringify(w.warnings()));
  } finally {
    await w.close();
  }
});

test('the store holds a hub\'s verdict with another outcome: the replayed result is written over it and counted, as before', async () => {
  const w = await twoHubs();
  try {
    const rec = await w.runningSeenByB();
    w.view.hold();
    await w.A.jobEnds.finish(rec, { outcome: 'interrupted', reason: 'the agent reconnected without it' });
    assert.equal(w.bucket.get(rec.id)?.state, 'interrupted');
    const s = session('web1');
    const replay = w.B.jobEnds.onJobEnd(s, { ...result(rec), replayed: true });
    await waitFor('B asked the store', () => w.at.reads === 1 || null, 2000);
    setTimeout(() => w.view.release(), 50);
    await replay;
    assert.equal(w.bucket.get(rec.id)?.state, 'success', 'the agent\'s result replaces the verdict');
    assert.deepEqual(w.A.ends, [`${rec.id}:interrupted`]);
    assert.deepEqual(w.B.ends, [`${rec.id}:success`]);
    assert.deepEqual(s.sent, [{ type: 'job.ack', jobId: rec.id }]);
  } finally {
    await w.close();
  }
});
