// A result is acknowledged to the agent only once its record is durable, also
// when the agent replays it (after a reconnect) while this hub's write of it
// has not landed: the hub shows the unwritten record at once (JobStore's
// overlay), and before the fix the replay found it there, took it for
// "recorded already" and acknowledged it, so the agent dropped the only copy
// of a result the store never got (the cluster soak's NATS-kill cycles).
// Scheduler logic on the memory backend (hub/store/memory-backend.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { LocalHolders } from '../../hub/holders/local.js';

function hello(name: string): Hello {
  return { type: 'hello', protocol: 1, name, agentVersion: 'test', system: null, generation: null, configHash: null, capabilities: [] };
}

interface FakeSession { name: string; hello: Hello | null; closed: boolean; sent: HubMessage[]; send(m: HubMessage): boolean }
function fakeSession(name: string): FakeSession {
  return { name, hello: hello(name), closed: false, sent: [], send(m) { this.sent.push(m); return true; } };
}

test('a replayed result whose record is not durable yet is not acknowledged until it is', async () => {
  const log = silentLogger();
  const state = new MemoryState();
  const store = await JobStore.open(new MemoryBackend(state), { history: 10, log });
  const s = fakeSession('web1');
  const scheduler = new Scheduler({ store, sessions: { get: (n) => (n === 'web1' ? s : undefined) }, bus: new LocalEventBus(log), holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  await scheduler.onHello(s, s.hello!);
  const r = await scheduler.trigger('web1', 'switch', false);
  await store.settled();
  state.failWrites = 'no space left on device';
  const end = { type: 'job.end' as const, jobId: r.jobId, action: 'switch' as const, outcome: 'success' as const, exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 };
  await scheduler.onMessage(s, end);
  assert.equal(store.get(r.jobId)?.state, 'success', 'the hub shows the result at once');
  assert.equal(store.durable(r.jobId), undefined, 'but it is not durable');
  // The agent replays it (as after a reconnect): still not durable, so still no ack.
  // (Not awaited: the memory store holds a write back while writes fail, as a store retrying it would.)
  const replay = scheduler.onMessage(s, { ...end, replayed: true });
  await new Promise((res) => setTimeout(res, 200));
  assert.deepEqual(s.sent.map((m) => m.type), ['job.start'], 'no ack while the record is not durable, replay or not');
  assert.notEqual(JSON.parse(state.bucket('jobs').records.get(r.jobId)!.json).state, 'success');
  state.failWrites = null;
  await replay;
  const deadline = Date.now() + 10_000;
  while (!s.sent.some((m) => m.type === 'job.ack') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  assert.equal(s.sent[1]?.type, 'job.ack', 'acknowledged once durable');
  assert.equal(JSON.parse(state.bucket('jobs').records.get(r.jobId)!.json).state, 'success', 'durable in the backing state');
  assert.equal(store.durable(r.jobId)?.state, 'success');
  scheduler.close();
  await store.close();
});
