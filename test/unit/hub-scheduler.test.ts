// The scheduler's logic against the memory backend (hub/store/memory-backend.ts)
// and fake sessions: plain objects with send()/name/hello, standing in for
// an agent's control channel. Real agents run it in the integration tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino, type Logger } from 'pino';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: pino({ level: 'debug' }, { write: (s: string) => { lines.push(s); } }), lines };
}

function hello(name: string, extra: Partial<Hello> = {}): Hello {
  return { type: 'hello', protocol: 1, name, agentVersion: 'test', system: null, generation: null, configHash: null, capabilities: [], ...extra };
}

interface FakeSession { name: string; hello: Hello | null; closed: boolean; sent: HubMessage[]; send(m: HubMessage): boolean }
function fakeSession(name: string, h: Partial<Hello> = {}): FakeSession {
  return { name, hello: hello(name, h), closed: false, sent: [], send(m) { this.sent.push(m); return true; } };
}

test('a throwing job listener does not turn a recorded result into "cannot record the job result"; the ack goes out at once', async () => {
  const { log, lines } = capture();
  const backend = new MemoryBackend();
  const store = await JobStore.open(backend, { history: 10, log });
  const s = fakeSession('web1');
  const sessions = { get: (n: string) => (n === 'web1' ? s : undefined) };
  const bus = new LocalEventBus(log);
  const scheduler = new Scheduler({ store, sessions, bus, log });
  bus.subscribe({ all: true }, (e) => { if (e.kind === 'job' && e.event.ev === 'end') throw new Error('listener bug'); });
  await scheduler.onHello(s, s.hello!);
  const r = await scheduler.trigger('web1', 'switch', false);
  assert.equal(r.disposition, 'dispatched');
  await scheduler.onMessage(s, { type: 'job.end', jobId: r.jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 });
  assert.deepEqual(s.sent.map((m) => m.type), ['job.start', 'job.ack'], 'acked at once, not after a retry');
  assert.equal(store.get(r.jobId)?.state, 'success');
  assert.ok(!lines.some((l) => l.includes('cannot record the job result')), lines.join(''));
  assert.ok(lines.some((l) => l.includes('event listener failed') && l.includes('listener bug')), 'the listener\'s failure is logged as its own');
  await store.close();
});
