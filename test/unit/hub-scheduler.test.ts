// The scheduler's logic against the memory backend (hub/store/memory-backend.ts)
// and fake sessions: plain objects with send()/name/hello, standing in for
// an agent's control channel. Real agents run it in the integration tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino, type Logger } from 'pino';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { LocalHolders } from '../../hub/holders/local.js';
import { runsAfter } from '../../hub/presence.js';

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
  const scheduler = new Scheduler({ store, sessions, bus, holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
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

/** A hub that died with these jobs in flight: their records, as a restarted hub finds them. */
async function restartedHub(records: Array<{ id: string; host: string; state: 'dispatched' | 'running' | 'queued' }>) {
  const { log, lines } = capture();
  const state = new MemoryState();
  const before = await JobStore.open(new MemoryBackend(state), { history: 10, log });
  for (const r of records) await before.save({ id: r.id, host: r.host, action: 'switch', state: r.state, requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null });
  await before.close();
  const store = await JobStore.open(new MemoryBackend(state), { history: 10, log });
  const live = new Map<string, FakeSession>();
  const bus = new LocalEventBus(log);
  const ends: string[] = [];
  bus.subscribe({ all: true }, (e) => { if (e.kind === 'job' && e.event.ev === 'end') ends.push(`${e.event.jobId}:${e.event.outcome}`); });
  const scheduler = new Scheduler({ store, sessions: { get: (n) => live.get(n) }, bus, holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  const connect = async (name: string, h: Partial<Hello> = {}): Promise<FakeSession> => {
    const s = fakeSession(name, h);
    live.set(name, s);
    await scheduler.onHello(s, s.hello!);
    return s;
  };
  const disconnect = async (name: string): Promise<void> => {
    live.delete(name);
    await scheduler.onDisconnect(name);
  };
  return { store, scheduler, connect, disconnect, ends, lines, state: (id: string) => store.get(id)?.state, reason: (id: string) => store.get(id)?.reason ?? '' };
}

test('recovery is per host, at its hello: nothing changes at hub start; each host\'s hello settles its own jobs', async () => {
  const h = await restartedHub([
    { id: 'web1job00001', host: 'web1', state: 'running' },
    { id: 'web2job00001', host: 'web2', state: 'dispatched' },
    { id: 'web3job00001', host: 'web3', state: 'running' },
    { id: 'web4job00001', host: 'web4', state: 'running' },
  ]);
  await h.scheduler.recover({ graceMs: 60_000 });
  // A cluster hub starting next to others must not touch their hosts' jobs: nothing is decided yet.
  assert.deepEqual(['web1', 'web2', 'web3', 'web4'].map((n) => h.state(`${n}job00001`)), ['running', 'dispatched', 'running', 'running']);
  assert.deepEqual(h.ends, []);
  // Still running it: stays running, and is the host's active job.
  await h.connect('web1', { runningJobId: 'web1job00001' });
  assert.equal(h.state('web1job00001'), 'running');
  assert.equal(h.scheduler.activeJob('web1')?.id, 'web1job00001');
  // Back without it: the hub's restart lost it.
  await h.connect('web2');
  assert.equal(h.state('web2job00001'), 'interrupted');
  assert.match(h.reason('web2job00001'), /^hub restarted during the job/);
  // Its result waits in the agent's outbox: left for the replayed job.end.
  const s3 = await h.connect('web3', { unreported: ['web3job00001'] });
  assert.equal(h.state('web3job00001'), 'running');
  await h.scheduler.onMessage(s3, { type: 'job.end', jobId: 'web3job00001', action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 9, replayed: true });
  assert.equal(h.state('web3job00001'), 'success');
  assert.deepEqual(s3.sent.map((m) => m.type), ['job.ack']);
  // web4 has not come back (yet): undecided.
  assert.equal(h.state('web4job00001'), 'running');
  assert.deepEqual(h.ends, ['web2job00001:interrupted', 'web3job00001:success']);
  h.scheduler.close();
  await h.store.close();
});

test('a job the agent has although its record says queued (the dispatched write died with the hub) is not sent again', async () => {
  // The hub sent each from its queued record and was killed before its eventual "dispatched" write landed.
  const h = await restartedHub([
    { id: 'web1job00001', host: 'web1', state: 'queued' },
    { id: 'web2job00001', host: 'web2', state: 'queued' },
    { id: 'web3job00001', host: 'web3', state: 'queued' },
  ]);
  await h.scheduler.recover({ graceMs: 60_000 });
  // Ended while the hub was down: its result waits in the agent's outbox.
  const s1 = await h.connect('web1', { unreported: ['web1job00001'] });
  assert.equal(s1.sent.length, 0, 'not sent again');
  await h.scheduler.onMessage(s1, { type: 'job.end', jobId: 'web1job00001', action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 9, replayed: true });
  assert.equal(h.state('web1job00001'), 'success');
  assert.deepEqual(s1.sent.map((m) => m.type), ['job.ack'], 'its replayed result is recorded and acknowledged, and nothing is sent');
  // Still running it.
  const s2 = await h.connect('web2', { runningJobId: 'web2job00001' });
  assert.equal(s2.sent.length, 0);
  assert.equal(h.state('web2job00001'), 'running');
  // Never received: still the host's queued job, sent now.
  const s3 = await h.connect('web3');
  assert.deepEqual(s3.sent.map((m) => m.type === 'job.start' ? m.jobId : m.type), ['web3job00001']);
  h.scheduler.close();
  await h.store.close();
});

test('a host that moved here with a job whose record says queued (written by the hub it left) is not sent it again', async () => {
  // No recover(): this hub was up all along; the queued records are another hub's, seen through the shared store.
  const h = await restartedHub([{ id: 'web1job00001', host: 'web1', state: 'queued' }]);
  const s1 = await h.connect('web1', { unreported: ['web1job00001'] });
  assert.equal(s1.sent.length, 0, 'not sent again');
  // A trigger meanwhile is the host's next job, sent once the replayed result is in.
  const next = await h.scheduler.trigger('web1', 'boot', false);
  assert.equal(next.disposition, 'dispatched', 'the host is idle: it only holds a result');
  await h.scheduler.onMessage(s1, { type: 'job.end', jobId: 'web1job00001', action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 9, replayed: true });
  assert.equal(h.state('web1job00001'), 'success');
  assert.deepEqual(s1.sent.map((m) => m.type === 'job.start' ? m.jobId : m.type), [next.jobId, 'job.ack']);
  h.scheduler.close();
  await h.store.close();
});

test('recovery: a host that never comes back has its jobs interrupted after the grace, not before and not forever', async () => {
  const h = await restartedHub([
    { id: 'gonejob00001', host: 'gone', state: 'running' },
    { id: 'slowjob00001', host: 'slow', state: 'running' },
    { id: 'gonejob0000q', host: 'gone', state: 'queued' },
  ]);
  await h.scheduler.recover({ graceMs: 200 });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.state('gonejob00001'), 'running', 'not before the grace');
  // "slow" comes back inside the grace with the result still to replay, then drops again.
  await h.connect('slow', { unreported: ['slowjob00001'] });
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(h.state('gonejob00001'), 'interrupted');
  assert.match(h.reason('gonejob00001'), /^hub restarted during the job; waiting for the agent to report/);
  assert.equal(h.state('gonejob0000q'), 'queued', 'a queued job waits for its host, as always');
  assert.equal(h.state('slowjob00001'), 'running', 'connected at the end of the grace: its replay is on the way');
  await h.disconnect('slow');
  assert.equal(h.state('slowjob00001'), 'interrupted', 'gone again without replaying: not running forever');
  // A late result still wins (the agent keeps it until acknowledged).
  const s = await h.connect('gone', { unreported: ['gonejob00001'] });
  await h.scheduler.onMessage(s, { type: 'job.end', jobId: 'gonejob00001', action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 9, replayed: true });
  assert.equal(h.state('gonejob00001'), 'success');
  h.scheduler.close();
  await h.store.close();
});

test('a result that cannot be made durable is not acknowledged until it is (the disk-full path, on the memory backend)', async () => {
  const { log, lines } = capture();
  const state = new MemoryState();
  const store = await JobStore.open(new MemoryBackend(state), { history: 10, log });
  const s = fakeSession('web1');
  const scheduler = new Scheduler({ store, sessions: { get: (n) => (n === 'web1' ? s : undefined) }, bus: new LocalEventBus(log), holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  await scheduler.onHello(s, s.hello!);
  const r = await scheduler.trigger('web1', 'switch', false);
  await store.settled();
  state.failWrites = 'no space left on device';
  await scheduler.onMessage(s, { type: 'job.end', jobId: r.jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 });
  assert.deepEqual(s.sent.map((m) => m.type), ['job.start'], 'no ack while the record is not durable');
  assert.ok(lines.some((l) => l.includes('cannot record the job result')));
  state.failWrites = null;
  const deadline = Date.now() + 10_000;
  while (!s.sent.some((m) => m.type === 'job.ack') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  assert.deepEqual(s.sent.map((m) => m.type), ['job.start', 'job.ack']);
  assert.equal(JSON.parse(state.bucket('jobs').records.get(r.jobId)!.json).state, 'success', 'durable in the backing state');
  scheduler.close();
  await store.close();
});

test('a job record keeps what the host ran before it (at dispatch) and after it (job.end); an agent that does not say the generation leaves it unknown', async () => {
  const { log } = capture();
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log });
  const s = fakeSession('web1', { system: '/nix/store/aaaa-sys-4', generation: 4 });
  const scheduler = new Scheduler({ store, sessions: { get: (n: string) => (n === 'web1' ? s : undefined) }, bus: new LocalEventBus(log), holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  await scheduler.onHello(s, s.hello!);
  const r = await scheduler.trigger('web1', 'switch', false);
  assert.deepEqual([store.get(r.jobId)?.systemBefore, store.get(r.jobId)?.generationBefore], ['/nix/store/aaaa-sys-4', 4], 'recorded at dispatch');
  const end = { type: 'job.end', jobId: r.jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 } as const;
  await scheduler.onMessage(s, { ...end, system: '/nix/store/bbbb-sys-5', generation: 5 });
  const done = store.get(r.jobId)!;
  assert.deepEqual([done.generationBefore, done.generationAfter, done.systemAfter], [4, 5, '/nix/store/bbbb-sys-5']);
  // The hub's own verdicts (interrupted) say nothing about after.
  const r2 = await scheduler.trigger('web1', 'boot', false);
  await scheduler.onDisconnect('web1');
  assert.equal(store.get(r2.jobId)?.state, 'interrupted');
  assert.equal('generationAfter' in store.get(r2.jobId)!, false);
  await store.close();

  // What a live job.end tells the hub about the host now (presence.ts): an older agent sends no generation.
  const h = hello('web1', { system: '/nix/store/aaaa-sys-4', generation: 4 });
  assert.deepEqual(runsAfter({ ...end, system: '/nix/store/bbbb-sys-5', generation: 5 }, h), { system: '/nix/store/bbbb-sys-5', generation: 5 });
  assert.deepEqual(runsAfter({ ...end, system: '/nix/store/bbbb-sys-5' }, h), { system: '/nix/store/bbbb-sys-5', generation: null }, 'unknown, not the generation from before the switch');
  assert.deepEqual(runsAfter({ ...end, action: 'build' }, h), {}, 'a build changes nothing the hub shows');
  assert.deepEqual(runsAfter({ ...end, configHash: 'abc' , generation: 4 }, h), { configHash: 'abc', generation: 4 });
});

test('a trigger naming its job id starts that job once: the same id again is answered with it, also after it ended (a rollout turn sent by two drivers)', async () => {
  const { log } = capture();
  const store = await JobStore.open(new MemoryBackend(), { history: 10, log });
  const s = fakeSession('web1');
  const scheduler = new Scheduler({ store, sessions: { get: (n: string) => (n === 'web1' ? s : undefined) }, bus: new LocalEventBus(log), holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  await scheduler.onHello(s, s.hello!);
  const id = 'r-k3m9x2ab-0-AbCdEfGhIjKlMnOp';
  const first = await scheduler.trigger('web1', 'switch', false, { jobId: id });
  assert.deepEqual([first.jobId, first.disposition], [id, 'dispatched']);
  const again = await scheduler.trigger('web1', 'switch', false, { jobId: id });
  assert.deepEqual([again.jobId, again.disposition], [id, 'coalesced'], 'not a follow-up job');
  await scheduler.onMessage(s, { type: 'job.end', jobId: id, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 5 });
  const late = await scheduler.trigger('web1', 'switch', false, { jobId: id });
  assert.deepEqual([late.jobId, late.disposition], [id, 'coalesced'], 'a late trigger of the same turn does not run it again');
  assert.equal(s.sent.filter((m) => m.type === 'job.start').length, 1);
  assert.deepEqual(store.all().map((r) => [r.id, r.state]), [[id, 'success']]);
  await assert.rejects(scheduler.trigger('web2', 'switch', true, { jobId: id }), /job r-k3m9x2ab-0-AbCdEfGhIjKlMnOp is a job of web1/);
  await store.close();
});
