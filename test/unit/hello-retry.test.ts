// A hello that failed halfway is handled again on a timer, not only when a
// cluster hub becomes current again (hub/jobs/arrivals.ts retrySoon). Found
// by review: a job sent to a connection that died half-open; the agent came
// back on a new connection whose hello did not name the job; recording it
// `interrupted` failed (a full disk on a single hub; the memory backend's
// failWrites stands in for it), so the hello threw with the old job still
// the host's active one, and every later trigger queued (then coalesced)
// behind it with nothing sent, until the agent reconnected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { FAILED_HELLO_RETRY_MS } from '../../hub/jobs/arrivals.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { LocalHolders } from '../../hub/holders/local.js';

const log = silentLogger();
const hello = (name: string): Hello => ({ type: 'hello', protocol: 1, name, agentVersion: 'test', system: null, generation: null, configHash: null, capabilities: [] });

interface FakeSession { name: string; hello: Hello | null; closed: boolean; sent: HubMessage[]; send(m: HubMessage): boolean }
const fakeSession = (name: string): FakeSession => ({ name, hello: hello(name), closed: false, sent: [], send(m) { this.sent.push(m); return true; } });

test('a hello whose write failed is handled again a few seconds later: the lost job is interrupted and the next trigger is sent', { timeout: 30_000 }, async () => {
  const state = new MemoryState();
  const store = await JobStore.open(new MemoryBackend(state), { history: 10, log });
  let current: FakeSession = fakeSession('web1');
  const sessions = { get: (n: string) => (n === 'web1' ? current : undefined) };
  const scheduler = new Scheduler({ store, sessions, bus: new LocalEventBus(log), holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  try {
    await scheduler.onHello(current, current.hello!);
    const lost = await scheduler.trigger('web1', 'switch', false);
    assert.equal(lost.disposition, 'dispatched');

    // The agent is back on a new connection, without the job; the disk is full right then.
    current = fakeSession('web1');
    state.failWrites = 'disk full';
    await assert.rejects(scheduler.onHello(current, current.hello!), /disk full/);
    state.failWrites = null;

    const next = await scheduler.trigger('web1', 'boot', false);
    assert.notEqual(next.disposition, 'dispatched', 'blocked behind the lost job until the hello is handled again');
    const deadline = Date.now() + FAILED_HELLO_RETRY_MS + 5000;
    while (!current.sent.some((m) => m.type === 'job.start') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(current.sent.map((m) => m.type), ['job.start'], 'the next job went out on the new connection');
    assert.equal(store.get(lost.jobId)?.state, 'interrupted');
  } finally {
    scheduler.close();
    await store.close();
  }
});
