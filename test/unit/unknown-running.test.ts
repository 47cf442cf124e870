// An agent reconnects running a job the hub has no record of: the hub that
// sent it died before writing its record (a cluster hub holds a job's
// dispatched record back for a moment, job-writes.ts EVENTUAL_HOLD_MS). The
// host is busy all the same: a trigger meanwhile queues behind that job and
// goes out once its end is recorded (adopted on the host's word), instead of
// going to an agent that runs something else. Logic on the memory backend
// with a fake session; real agents and hubs run it in the cluster soak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { LocalHolders } from '../../hub/holders/local.js';

const log = silentLogger();

test('a trigger for a host that runs a job unknown to this hub waits for that job\'s end, which is recorded', async () => {
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log });
  const hello: Hello = { type: 'hello', protocol: 1, name: 'web1', agentVersion: 'test', system: null, generation: null, configHash: null, capabilities: [], runningJobId: 'lostrecord000001' };
  const sent: HubMessage[] = [];
  const s = { name: 'web1', hello, closed: false, send(m: HubMessage) { sent.push(m); return true; } };
  const scheduler = new Scheduler({ store, sessions: { get: (n) => (n === 'web1' ? s : undefined) }, bus: new LocalEventBus(log), holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  await scheduler.onHello(s, hello);
  const r = await scheduler.trigger('web1', 'switch', false);
  assert.equal(r.disposition, 'queued', 'not sent to an agent that runs another job');
  assert.deepEqual(sent.map((m) => m.type), [], 'nothing sent yet');
  await scheduler.onMessage(s, { type: 'job.end', jobId: 'lostrecord000001', action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 });
  assert.equal(store.get('lostrecord000001')?.state, 'success', 'the unknown job is recorded on the host\'s word');
  assert.deepEqual(sent.map((m) => m.type), ['job.ack', 'job.start'], 'acknowledged, then the queued job goes out');
  assert.equal((sent[1] as { jobId: string }).jobId, r.jobId);
  await store.settled();
  await store.close();
});
