// The rollout engine's logic against the memory backend, the real scheduler
// and bus, and fake sessions (plain objects that record job.start): what a
// hub restart finds half done, and halts that must withdraw queued jobs.
// Real agents and a real hub run rollouts in test/integration/rollout*.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { LOCAL_HUB, LocalHolders } from '../../hub/holders/local.js';
import { LocalRouter } from '../../hub/jobs/router.js';
import { localDriving } from '../../hub/rollout/driver.js';
import { RolloutStore } from '../../hub/rollout/store.js';
import { RolloutEngine } from '../../hub/rollout/engine.js';
import { parseSize } from '../../common/protocol/rollout.js';
import type { RolloutOptions } from '../../common/protocol/rollout.js';

const log = pino({ level: 'silent' });

interface FakeSession { name: string; hello: Hello; closed: boolean; sent: HubMessage[]; send(m: HubMessage): boolean }
const session = (name: string): FakeSession => ({
  name, closed: false, sent: [],
  hello: { type: 'hello', protocol: 1, name, agentVersion: 'test', system: null, generation: null, configHash: null, capabilities: [] },
  send(m) { this.sent.push(m); return true; },
});

/** One hub over `state`: open it again over the same state to restart. */
async function hub(state: MemoryState, online: string[]) {
  const backend = new MemoryBackend(state);
  const jobs = await JobStore.open(backend, { history: 20, log });
  const bus = new LocalEventBus(log);
  // Counts the engine's subscriptions to the whole bus (a cluster hub pays for each in traffic).
  let listening = 0;
  const subscribe = bus.subscribe.bind(bus);
  bus.subscribe = (f, fn) => {
    const sub = subscribe(f, fn);
    if (!('all' in f)) return sub;
    listening += 1;
    let on = true;
    return { unsubscribe: () => { if (on) listening -= 1; on = false; sub.unsubscribe(); } };
  };
  const live = new Map(online.map((n) => [n, session(n)]));
  const scheduler = new Scheduler({ store: jobs, sessions: { get: (n) => live.get(n) }, bus, holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  await scheduler.recover({ graceMs: 60_000 });
  for (const s of live.values()) await scheduler.onHello(s, s.hello);
  const store = await RolloutStore.open(backend);
  // What the daemon wires: triggers through the router, a driver per process (a restart is a new run that takes over).
  const router = new LocalRouter({ scheduler, sessions: { get: (n) => live.get(n) }, hubName: LOCAL_HUB });
  const engine = new RolloutEngine({
    store, jobs, scheduler: { trigger: (t) => router.trigger(t), cancelQueued: (host, id, why) => scheduler.cancelQueued(host, id, why) },
    bus, connected: (h) => live.has(h), driving: localDriving(LOCAL_HUB), log,
  });
  await engine.start();
  const connect = async (name: string): Promise<FakeSession> => {
    const s = session(name);
    live.set(name, s);
    bus.publish({ kind: 'connected', host: name, carrier: 'ssh', reconnect: true });
    await scheduler.onHello(s, s.hello);
    return s;
  };
  const end = (host: string, outcome: 'success' | 'failure' = 'success') => {
    const s = live.get(host)!;
    const start = s.sent.filter((m) => m.type === 'job.start').pop() as Extract<HubMessage, { type: 'job.start' }>;
    return scheduler.onMessage(s, { type: 'job.end', jobId: start.jobId, action: start.action, outcome, exitCode: outcome === 'success' ? 0 : 1, startedAt: new Date().toISOString(), durationMs: 1 });
  };
  const close = async () => { engine.close(); scheduler.close(); await store.close(); await jobs.close(); await bus.close(); };
  return { jobs, store, engine, scheduler, live, connect, end, close, listening: () => listening };
}

function options(o: Partial<RolloutOptions> = {}): RolloutOptions {
  return { action: 'switch', waves: null, canary: { n: 1 }, maxInFlight: { n: 10 }, maxFailures: parseSize('0', 'x', { zero: true }), offline: 'skip', offlineTimeoutMs: 60_000, pauseAfterCanary: false, ...o };
}

/** Let queued engine steps run (they chain promises, no timers). */
const settle = () => new Promise((r) => setTimeout(r, 30));
/**
 * Settle until COND holds (at most 5 s), then the test's own asserts run: a fixed 30 ms was not always enough
 * for the engine's chain of store writes beside other test files on 2 cores (this file's halt test failed once).
 */
async function settleUntil(cond: () => boolean): Promise<void> {
  for (const t0 = Date.now(); !cond() && Date.now() - t0 < 5000;) await settle();
}
const starts = (s: FakeSession | undefined) => (s?.sent ?? []).filter((m) => m.type === 'job.start').length;

test('a halt withdraws the job queued for an offline host: it never runs when the host connects; resume queues it again', async () => {
  const state = new MemoryState();
  const h = await hub(state, ['a']);
  // Wave 1: a (online) and b (offline, queued). a fails: the rollout halts.
  const r = await h.engine.create({ hosts: ['a', 'b', 'c'], selection: { all: true, tags: [], hosts: [] }, options: options({ canary: { n: 2 }, offline: 'queue' }) });
  await settleUntil(() => h.store.member(r.id, 'b')?.state === 'queued' && starts(h.live.get('a')) === 1);
  const queued = h.store.member(r.id, 'b');
  assert.equal(queued?.state, 'queued');
  assert.equal(h.jobs.get(queued!.jobId!)?.state, 'queued');
  await h.end('a', 'failure');
  await settleUntil(() => h.store.get(r.id)?.state === 'halted' && h.jobs.get(queued!.jobId!)?.state === 'interrupted');
  assert.equal(h.store.get(r.id)?.state, 'halted');
  assert.equal(h.store.member(r.id, 'b'), undefined, 'b is pending again');
  const job = h.jobs.get(queued!.jobId!)!;
  assert.deepEqual([job.state, job.reason], ['interrupted', `cancelled: rollout ${r.id} was halted before the host connected`]);
  const b = await h.connect('b');
  await settle();
  assert.equal(starts(b), 0, 'the withdrawn job is not sent when b connects');
  await h.engine.resume(r.id, { retryFailed: false });
  await settleUntil(() => starts(b) >= 1);
  await settle();
  assert.equal(starts(b), 1, 'resumed: b, now connected, gets its turn');
  await h.close();
});

test('hub restart: a host recorded as starting whose trigger never happened gets its turn; one whose job exists keeps it', async () => {
  const state = new MemoryState();
  const first = await hub(state, []);
  // Offline everywhere and --offline wait: nothing starts; then write what a hub
  // that died between "host starting" and its trigger leaves behind.
  const r = await first.engine.create({ hosts: ['a', 'b'], selection: { all: true, tags: [], hosts: [] }, options: options({ canary: { n: 2 }, offline: 'wait' }) });
  await settle();
  const since = new Date().toISOString();
  await first.store.saveMember({ kind: 'member', rollout: r.id, host: 'a', wave: 0, state: 'running', jobId: null, since, reason: null, health: null, epoch: 1 });
  await first.store.saveMember({ kind: 'member', rollout: r.id, host: 'b', wave: 0, state: 'running', jobId: null, since, reason: null, health: null, epoch: 1 });
  // b's trigger did happen: its job record made it to the store (a is not so lucky).
  const jobB = { id: 'jobB-000000000001', host: 'b', action: 'switch' as const, state: 'running' as const, requestedAt: new Date(Date.now() + 5).toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null };
  await first.jobs.save(jobB);
  await first.close();

  const second = await hub(state, ['a']);
  await settle();
  const a = second.store.member(r.id, 'a');
  assert.equal(a?.state, 'running', 'a was started again by the restarted hub');
  assert.notEqual(a?.jobId, null);
  assert.equal(starts(second.live.get('a')), 1);
  const b = second.store.member(r.id, 'b');
  assert.deepEqual([b?.state, b?.jobId], ['running', 'jobB-000000000001'], 'b keeps the job it had: no second switch');
  await second.close();
});

test('hub restart: a result recorded just before the hub died, but not yet in the rollout, is taken from the job record', async () => {
  const state = new MemoryState();
  const first = await hub(state, ['a', 'b']);
  const r = await first.engine.create({ hosts: ['a', 'b'], selection: { all: true, tags: [], hosts: [] }, options: options() });
  await settle();
  const jobA = first.store.member(r.id, 'a')!.jobId!;
  // The job ends in the job store, but the engine is gone before it hears of it.
  first.engine.close();
  await first.end('a');
  await settle();
  assert.equal(first.jobs.get(jobA)?.state, 'success');
  assert.equal(first.store.member(r.id, 'a')?.state, 'running', 'the rollout did not hear of it');
  await first.close();

  const second = await hub(state, ['a', 'b']);
  await settle();
  assert.equal(second.store.member(r.id, 'a')?.state, 'healthy');
  assert.equal(second.store.get(r.id)?.wave, 1, 'and the rollout moved on to wave 2');
  assert.equal(starts(second.live.get('b')), 1);
  await second.close();
});

test('--pause-after-canary: halts once the canary is healthy, with nothing else started; resume goes on with wave 2', async () => {
  const h = await hub(new MemoryState(), ['a', 'b', 'c']);
  const r = await h.engine.create({ hosts: ['a', 'b', 'c'], selection: { all: true, tags: [], hosts: [] }, options: options({ pauseAfterCanary: true }) });
  await settle();
  await h.end('a');
  await settle();
  const paused = h.store.get(r.id)!;
  assert.deepEqual([paused.state, paused.wave, paused.reason], ['halted', 1, 'paused after the canary wave, as asked (--pause-after-canary); `bento-hub rollout resume` goes on']);
  assert.deepEqual([starts(h.live.get('b')), starts(h.live.get('c'))], [0, 0]);
  await h.engine.resume(r.id, { retryFailed: false });
  await settle();
  assert.deepEqual([starts(h.live.get('b')), starts(h.live.get('c'))], [1, 1]);
  await h.end('b');
  await h.end('c');
  await settle();
  assert.deepEqual([h.store.get(r.id)!.state, h.store.get(r.id)!.reason], ['done', '3 healthy']);
  await h.close();
});

test('a result replayed after a lost ack does not undo a resume: the failure stays acknowledged', async () => {
  const h = await hub(new MemoryState(), ['a', 'b']);
  // Paused after the canary too: a resume past the canary's failure does not pause a second time.
  const r = await h.engine.create({ hosts: ['a', 'b'], selection: { all: true, tags: [], hosts: [] }, options: options({ pauseAfterCanary: true }) });
  await settle();
  await h.end('a', 'failure');
  await settle();
  assert.equal(h.store.get(r.id)!.state, 'halted');
  await h.engine.resume(r.id, { retryFailed: false });
  await settle();
  assert.equal(starts(h.live.get('b')), 1, 'resumed past a\'s failure');
  // The agent of a missed the ack and sends the same result again: the scheduler records it again and says so on the bus.
  await h.end('a', 'failure');
  await settle();
  assert.deepEqual([h.store.get(r.id)!.state, h.store.member(r.id, 'a')!.acknowledged], ['running', true]);
  await h.close();
});

test('the engine listens to the bus only while it drives a running rollout; a host waited for starts when it connects', async () => {
  const h = await hub(new MemoryState(), ['a']);
  assert.equal(h.listening(), 0, 'no rollout: no subscription');
  const r = await h.engine.create({ hosts: ['a', 'b'], selection: { all: true, tags: [], hosts: [] }, options: options({ canary: { n: 2 }, offline: 'wait' }) });
  await settle();
  assert.equal(h.listening(), 1);
  assert.equal(h.store.member(r.id, 'b')?.state, 'waiting');
  const b = await h.connect('b');
  await settle();
  assert.equal(starts(b), 1, 'the connection was heard');
  await h.end('a');
  await h.end('b');
  await settle();
  assert.equal(h.store.get(r.id)!.state, 'done');
  assert.equal(h.listening(), 0, 'done: the subscription is gone');
  await h.close();
});
