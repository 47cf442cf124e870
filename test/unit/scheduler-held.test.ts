// A hub that cannot write a host's job records (NATS away, or the hub was
// paused: the fence refuses) must not send the host its next job: the soak
// found such jobs run at the agent while every view showed them queued,
// and sent again later (docs/cluster.md, "Open points" before this fix).
// The scheduler holds the job and sends it once the hub is current again
// (holders' onCurrent -> Scheduler.resumePending). The fence here is the
// JobStore's own hook, as the cluster's holders fill it (hub/cluster/holds.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { BentoError } from '../../common/protocol/errors.js';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { LocalHolders } from '../../hub/holders/local.js';

const hello: Hello = { type: 'hello', protocol: 1, name: 'web1', agentVersion: 'test', system: null, generation: null, configHash: null, capabilities: [] };

/** web1 connected to a scheduler whose JobStore fence refuses while `net.away` (as the cluster's holders fill it). */
async function fencedHub() {
  const log = silentLogger();
  const net = { away: false };
  const fence = { stamp: () => { if (net.away) throw new BentoError('CLUSTER_UNAVAILABLE', 'hub is not in touch with NATS'); return null; } };
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log, fence });
  const sent: HubMessage[] = [];
  /** The host's current session (a reconnect replaces it). */
  const link = { s: { name: 'web1', hello, closed: false, send(m: HubMessage) { sent.push(m); return true; } } };
  const scheduler = new Scheduler({ store, sessions: { get: (n: string) => (n === 'web1' ? link.s : undefined) }, bus: new LocalEventBus(log), holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  const starts = (): string[] => sent.filter((m) => m.type === 'job.start').map((m) => (m as { jobId: string }).jobId);
  return { net, store, link, scheduler, starts };
}

test('while the fence refuses the host, its next job is held (not sent, still queued); once current again it is sent once', async () => {
  const { net, store, link, scheduler, starts } = await fencedHub();
  const s = link.s;
  await scheduler.onHello(s, hello);
  const a = await scheduler.trigger('web1', 'switch', false);
  const b = await scheduler.trigger('web1', 'boot', false);
  assert.deepEqual([a.disposition, b.disposition], ['dispatched', 'queued']);

  net.away = true; // NATS away: the first job's result cannot be recorded now
  await scheduler.onMessage(s, { type: 'job.end', jobId: a.jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 });
  assert.deepEqual(starts(), [a.jobId], 'the queued job is not sent while its record cannot be written (before: sent at once)');
  assert.equal(store.get(b.jobId)?.state, 'queued');

  scheduler.resumePending(); // still away: nothing changes
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(starts(), [a.jobId]);

  net.away = false;
  scheduler.resumePending();
  for (let i = 0; i < 100 && starts().length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(starts(), [a.jobId, b.jobId], 'sent once the hub can record it');
  assert.equal(store.get(b.jobId)?.state, 'dispatched');
  scheduler.resumePending();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(starts(), [a.jobId, b.jobId], 'and only once');
  await scheduler.close();
  await store.close();
});

test('a hello the fence refused halfway is redone once current: the job the agent lost is interrupted and the queued one is sent (before: blocked for good)', async () => {
  const { net, store, link, scheduler, starts } = await fencedHub();
  try {
    await scheduler.onHello(link.s, hello);
    const a = await scheduler.trigger('web1', 'switch', false);
    const b = await scheduler.trigger('web1', 'boot', false);
    // The agent comes back without job a (lost) while the hub cannot write: interrupting a fails, so the hello fails.
    net.away = true;
    link.s = { ...link.s, closed: false }; // the agent reconnected: a new session
    await assert.rejects(scheduler.onHello(link.s, { ...hello, runningJobId: null }), /not in touch/);
    assert.equal(store.get(a.jobId)?.state, 'dispatched');
    net.away = false;
    scheduler.resumePending();
    for (let i = 0; i < 100 && starts().length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.get(a.jobId)?.state, 'interrupted', 'the lost job is settled when the hello is redone');
    assert.deepEqual(starts(), [a.jobId, b.jobId], 'and the queued job goes out');
  } finally {
    scheduler.close();
    await store.close();
  }
});

test('a result recorded after a retry clears the job the re-done hello made active again, and the next job goes out', async () => {
  const { net, store, link, scheduler, starts } = await fencedHub();
  await scheduler.onHello(link.s, hello);
  const a = await scheduler.trigger('web1', 'switch', false);
  const b = await scheduler.trigger('web1', 'boot', false);
  // The host moves here while this hub is not current: its hello fails halfway, then its result cannot be recorded.
  net.away = true;
  const sent2: HubMessage[] = [];
  link.s = { name: 'web1', hello, closed: false, send(m: HubMessage) { sent2.push(m); return true; } };
  await scheduler.onHello(link.s, { ...hello, runningJobId: a.jobId }).catch(() => undefined);
  await scheduler.onMessage(link.s, { type: 'job.end', jobId: a.jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 });
  assert.equal(store.get(a.jobId)?.state, 'dispatched', 'not recorded yet');
  // Current again: the hello is handled again and, the result not being recorded yet, makes job a active again.
  net.away = false;
  scheduler.resumePending();
  // The result is written again within 2 s (durable-ack.ts) and acknowledged; then b must go out.
  for (let i = 0; i < 80 && !sent2.some((m) => m.type === 'job.start'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(store.get(a.jobId)?.state, 'success');
  assert.ok(sent2.some((m) => m.type === 'job.ack' && m.jobId === a.jobId), 'acknowledged once durable');
  assert.deepEqual(sent2.filter((m) => m.type === 'job.start').map((m) => (m as { jobId: string }).jobId), [b.jobId], 'the queued job went out (before: it waited for an end that had come)');
  assert.deepEqual(starts(), [a.jobId]);
  await scheduler.close();
  await store.close();
});

test('the result of a job this hub has no record of, reported while it cannot write, is recorded and acknowledged once it can', async () => {
  const { net, store, link, scheduler } = await fencedHub();
  const sent2: HubMessage[] = [];
  link.s = { name: 'web1', hello, closed: false, send(m: HubMessage) { sent2.push(m); return true; } };
  await scheduler.onHello(link.s, { ...hello, runningJobId: 'lostrecord000002' }); // its hub died before writing it
  net.away = true;
  await scheduler.onMessage(link.s, { type: 'job.end', jobId: 'lostrecord000002', action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 }).catch(() => undefined);
  net.away = false;
  for (let i = 0; i < 80 && !sent2.some((m) => m.type === 'job.ack'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(store.get('lostrecord000002')?.state, 'success', 'recorded on the host\'s word (before: never, while the agent stayed connected)');
  assert.ok(sent2.some((m) => m.type === 'job.ack' && m.jobId === 'lostrecord000002'));
  const next = await scheduler.trigger('web1', 'switch', false);
  assert.equal(next.disposition, 'dispatched', 'the host is not left busy');
  await scheduler.close();
  await store.close();
});
