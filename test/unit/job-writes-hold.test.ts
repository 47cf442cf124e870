// A networked store's eventual job-record writes are held for a moment
// (job-writes.ts EVENTUAL_HOLD_MS) so a newer write of the same record
// replaces them: a job's dispatched record, followed within milliseconds by
// its running record, is not written at all, and one that ends within the
// hold costs one write instead of three. Logic on the memory backend (not
// ordered, like NATS); it counts the writes JobStore makes to its keyed
// store (the memory backend itself folds a key's unflushed writes together,
// so its revisions would not show them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import type { KeyedStore, OpenKeyedOptions, StateBackend } from '../../hub/store/types.js';

const log = silentLogger();
const job = (state: JobRecord['state'], more: Partial<JobRecord> = {}): JobRecord => ({
  id: 'j1_holdtestjobid000000', host: 'web1', action: 'switch', state, requestedAt: '2026-01-01T00:00:00.000Z',
  startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null, ...more,
});
const stored = (state: MemoryState, id: string): JobRecord | undefined => {
  const r = state.bucket('jobs').records.get(id);
  return r ? JSON.parse(r.json) as JobRecord : undefined;
};

const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

/** A memory backend whose jobs store counts its set() calls. */
function counting(state: MemoryState): { backend: StateBackend; sets: () => number; busy: (b: boolean) => void } {
  const inner = new MemoryBackend(state);
  let n = 0;
  let busy = false;
  const backend: StateBackend = {
    kind: inner.kind,
    openOutput: () => inner.openOutput(),
    close: () => inner.close(),
    async openKeyed<T>(name: string, opts: OpenKeyedOptions<T>): Promise<KeyedStore<T>> {
      const s = await inner.openKeyed<T>(name, opts);
      const set = s.set.bind(s);
      s.set = (key, value, o) => { n++; return set(key, value, o); };
      Object.defineProperty(s, 'busy', { get: () => busy });
      return s;
    },
  };
  return { backend, sets: () => n, busy: (b) => { busy = b; } };
}

test('dispatched, running and the result within the hold reach the store as one write', async () => {
  const state = new MemoryState();
  const c = counting(state);
  const store = await JobStore.open(c.backend, { history: 10, log });
  const a = store.save(job('dispatched'), { eventually: true });
  assert.equal(store.get(job('dispatched').id)?.state, 'dispatched', 'shown at once');
  await turn(); // the agent's job.started comes in a later turn
  const b = store.save(job('running', { startedAt: '2026-01-01T00:00:01.000Z' }), { eventually: true });
  assert.equal(store.get(job('dispatched').id)?.state, 'running');
  await turn();
  const done = job('success', { startedAt: '2026-01-01T00:00:01.000Z', endedAt: '2026-01-01T00:00:02.000Z', exitCode: 0, durationMs: 1000 });
  await store.save(done);
  await Promise.all([a, b]);
  assert.equal(c.sets(), 1, 'one write for the job');
  assert.deepEqual(stored(state, done.id), done);
  await store.close();
});

test('an eventual write alone is durable after the hold, and settled() sends it at once', async () => {
  const state = new MemoryState();
  const store = await JobStore.open(new MemoryBackend(state), { history: 10, log });
  const a = store.save(job('dispatched'), { eventually: true });
  assert.equal(stored(state, job('dispatched').id), undefined, 'held, not written yet');
  await a; // resolves once durable, after the hold
  assert.equal(stored(state, job('dispatched').id)?.state, 'dispatched');
  const b = store.save(job('running'), { eventually: true });
  await store.settled();
  assert.equal(stored(state, job('running').id)?.state, 'running', 'settled() resolves only once the held write is durable');
  await b;
  await store.close();
});

test('close() writes a held record before the store closes', async () => {
  const state = new MemoryState();
  const store = await JobStore.open(new MemoryBackend(state), { history: 10, log });
  const a = store.save(job('running'), { eventually: true });
  await store.close();
  await a;
  assert.equal(stored(state, job('running').id)?.state, 'running');
});

test('while the store is busy (writes wait for a turn) the hold is renewed; it ends once the store is not', async () => {
  const state = new MemoryState();
  const c = counting(state);
  const store = await JobStore.open(c.backend, { history: 10, log });
  c.busy(true);
  const a = store.save(job('running'), { eventually: true });
  await new Promise((r) => setTimeout(r, 1200)); // more than two holds
  assert.equal(c.sets(), 0, 'still held while the store is busy');
  c.busy(false);
  await a;
  assert.equal(c.sets(), 1);
  assert.equal(stored(state, job('running').id)?.state, 'running');
  await store.close();
});
