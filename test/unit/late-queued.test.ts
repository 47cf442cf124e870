// A job another hub queued for a host connected here, reaching this hub's
// view after the host's hello (hub/jobs/late-queued.ts): it is dispatched now,
// not at the host's next reconnect. The soak found such jobs left "queued"
// with their host online. Memory backend and a fake session (the logic); the
// soak and the cluster tests run it against real hubs and NATS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { LocalHolders } from '../../hub/holders/local.js';
import { followLateQueued } from '../../hub/jobs/late-queued.js';
import { newJob } from '../../hub/jobs/job-ids.js';

const hello = (name: string): Hello => ({ type: 'hello', protocol: 1, name, agentVersion: 'test', system: null, generation: null, configHash: null, capabilities: [] });

/** One hub's scheduler on the memory backend, with web1 connected through a fake session. */
async function web1Hub() {
  const log = silentLogger();
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log });
  const sent: HubMessage[] = [];
  const s = { name: 'web1', hello: hello('web1'), closed: false, send(m: HubMessage) { sent.push(m); return true; } };
  const sessions = { get: (n: string) => (n === 'web1' ? s : undefined) };
  const scheduler = new Scheduler({ store, sessions, bus: new LocalEventBus(log), holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  return { log, store, sent, s, sessions, scheduler };
}

test('a queued record for a connected, idle host that shows up after its hello is dispatched; one for a host not here is left alone', async () => {
  const { store, sent, s, sessions, scheduler } = await web1Hub();
  const errors: string[] = [];
  const unwatch = followLateQueued({ store, sessions, queuedLate: (h) => scheduler.queuedLate(h), onError: (h, e) => errors.push(`${h}: ${e.message}`) });
  try {
    await scheduler.onHello(s, s.hello);
    assert.equal(sent.length, 0, 'nothing to do at the hello');
    // Written by another hub (here: straight into the shared store), after the hello.
    const late = newJob('web1', 'switch');
    const away = newJob('db1', 'switch');
    await store.save(away);
    await store.save(late);
    await scheduler.queuedLate('web1'); // behind the one the watch started: both have run
    assert.deepEqual(sent.map((m) => m.type === 'job.start' ? m.jobId : m.type), [late.id], 'the late job was sent, once');
    assert.equal(store.get(late.id)?.state, 'dispatched');
    assert.equal(store.get(away.id)?.state, 'queued', 'a host not connected here keeps its queued job');
    assert.deepEqual(errors, []);
  } finally {
    unwatch();
    scheduler.close();
    await store.close();
  }
});

test('a pending job that is no longer queued (another hub ran it meanwhile) does not keep a late queued job out', async () => {
  const { store, sent, s, scheduler } = await web1Hub();
  try {
    await scheduler.onHello(s, s.hello);
    const running = await scheduler.trigger('web1', 'switch', false);
    const stale = await scheduler.trigger('web1', 'boot', false); // pending behind the running job
    assert.equal(stale.disposition, 'queued');
    // The view says another hub settled the pending job meanwhile, and queued a new one.
    await store.save({ ...store.get(stale.jobId)!, state: 'success', endedAt: new Date().toISOString(), exitCode: 0 });
    const late = newJob('web1', 'test');
    await store.save(late);
    await scheduler.queuedLate('web1');
    await scheduler.onMessage(s, { type: 'job.end', jobId: running.jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 });
    const starts = sent.filter((m) => m.type === 'job.start').map((m) => (m as { jobId: string }).jobId);
    assert.deepEqual(starts, [running.jobId, late.id], 'the late job runs once the running one ended (before: never, the stale pending id blocked it)');
  } finally {
    scheduler.close();
    await store.close();
  }
});

test('a stale pending id at the hello does not shut out a queued record that reached the view before the host came (the soak: left queued with its host online)', async () => {
  const { store, sent, s, scheduler } = await web1Hub();
  try {
    await scheduler.onHello(s, s.hello);
    const running = await scheduler.trigger('web1', 'switch', false);
    const stale = await scheduler.trigger('web1', 'boot', false);
    // Another hub settled the pending job and queued one more; no late-queued
    // call: the record came while the host was connected elsewhere.
    await store.save({ ...store.get(stale.jobId)!, state: 'success', endedAt: new Date().toISOString(), exitCode: 0 });
    const other = newJob('web1', 'test');
    await store.save(other);
    await scheduler.onHello(s, { ...s.hello, runningJobId: running.jobId }); // back here: the takeover sees a pending id (stale)
    await scheduler.onMessage(s, { type: 'job.end', jobId: running.jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 });
    const starts = sent.filter((m) => m.type === 'job.start').map((m) => (m as { jobId: string }).jobId);
    assert.deepEqual(starts, [running.jobId, other.id], 'the queued record runs once the running job ended');
    assert.equal(store.get(other.id)?.state, 'dispatched');
  } finally {
    scheduler.close();
    await store.close();
  }
});

test('resumePending (the hub is current again) also sends a queued record the scheduler never made pending', async () => {
  const { store, sent, s, scheduler } = await web1Hub();
  try {
    await scheduler.onHello(s, s.hello);
    const other = newJob('web1', 'switch'); // as if its hello had failed before the takeover saw this record
    await store.save(other);
    scheduler.resumePending();
    for (let i = 0; i < 100 && sent.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(sent.map((m) => m.type === 'job.start' ? m.jobId : m.type), [other.id]);
    scheduler.resumePending();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(sent.length, 1, 'sent once');
  } finally {
    scheduler.close();
    await store.close();
  }
});
