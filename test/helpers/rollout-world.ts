// Several "hubs" of a rollout cluster in one process, for unit tests of
// takeovers and claims: one memory state holds the job and rollout records
// (each hub's engine sees every write at once, as over a cluster backend),
// one scheduler dispatches to fake sessions (plain objects that record
// job.start), and each hub is a RolloutEngine with its own driving whose
// liveness the test sets (a hub "dies" when the test removes it from the
// alive set). A restart is a new world over the same state.
import { pino } from 'pino';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { MemoryBackend, type MemoryState } from '../../hub/store/memory-backend.js';
import { JobStore } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { LOCAL_HUB, LocalHolders } from '../../hub/holders/local.js';
import { LocalRouter } from '../../hub/jobs/router.js';
import type { RolloutDriving } from '../../hub/rollout/driver.js';
import { RolloutStore } from '../../hub/rollout/store.js';
import { RolloutEngine } from '../../hub/rollout/engine.js';
import type { RolloutScheduler } from '../../hub/rollout/steps.js';
import { parseSize, type RolloutOptions } from '../../common/protocol/rollout.js';

const log = pino({ level: 'silent' });

export interface FakeSession { name: string; hello: Hello; closed: boolean; sent: HubMessage[]; send(m: HubMessage): boolean }
type JobStart = Extract<HubMessage, { type: 'job.start' }>;

export const session = (name: string, extra: Partial<Hello> = {}): FakeSession => ({
  name, closed: false, sent: [],
  hello: { type: 'hello', protocol: 1, name, agentVersion: 'test', system: null, generation: null, configHash: null, capabilities: [], ...extra },
  send(m) { this.sent.push(m); return true; },
});

export function options(o: Partial<RolloutOptions> = {}): RolloutOptions {
  return { action: 'switch', waves: null, canary: { n: 1 }, maxInFlight: { n: 10 }, maxFailures: parseSize('0', 'x', { zero: true }), offline: 'skip', offlineTimeoutMs: 60_000, pauseAfterCanary: false, ...o };
}

/** Let queued engine steps (and a sweep or two at 50 ms) run. */
export const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));
export const startsOf = (s: FakeSession | undefined): JobStart[] => (s?.sent ?? []).filter((m): m is JobStart => m.type === 'job.start');
export const everyHost = { all: true, tags: [], hosts: [] };

/** The shared part of a cluster over STATE: HOSTS online now (with their hello's extras, e.g. runningJobId after a restart). */
export async function world(state: MemoryState, online: string[], hellos: Record<string, Partial<Hello>> = {}) {
  const backend = new MemoryBackend(state);
  const jobs = await JobStore.open(backend, { history: 20, log });
  const bus = new LocalEventBus(log);
  const live = new Map(online.map((n) => [n, session(n, hellos[n])]));
  const scheduler = new Scheduler({ store: jobs, sessions: { get: (n) => live.get(n) }, bus, holders: new LocalHolders({ get: () => undefined, all: () => [] }), log });
  await scheduler.recover({ graceMs: 60_000 });
  for (const s of live.values()) await scheduler.onHello(s, s.hello);
  const store = await RolloutStore.open(backend);
  const router = new LocalRouter({ scheduler, sessions: { get: (n) => live.get(n) }, hubName: LOCAL_HUB });
  const engines: RolloutEngine[] = [];
  const endJob = (host: string, jobId: string, outcome: 'success' | 'failure') => scheduler.onMessage(live.get(host)!, { type: 'job.end', jobId, action: 'switch', outcome, exitCode: outcome === 'success' ? 0 : 1, startedAt: new Date().toISOString(), durationMs: 1 });
  const connect = async (name: string, extra: Partial<Hello> = {}) => {
    const s = session(name, extra);
    live.set(name, s);
    bus.publish({ kind: 'connected', host: name, carrier: 'ssh', reconnect: true });
    await scheduler.onHello(s, s.hello);
    return s;
  };
  /**
   * A hub's engine (sweeping every 50 ms); TRIGGER replaces its path to the
   * scheduler (e.g. a slow routed trigger), STORE the shared rollout store
   * (e.g. one over views that lag: lagging-view.ts).
   */
  const engine = (driving: RolloutDriving, o: { trigger?: RolloutScheduler['trigger']; store?: RolloutStore } = {}) => {
    const e = new RolloutEngine({
      store: o.store ?? store, jobs,
      scheduler: { trigger: o.trigger ?? ((t) => router.trigger(t)), cancelQueued: (h, id, why) => scheduler.cancelQueued(h, id, why) },
      bus, connected: (h) => live.has(h), driving, log, sweepMs: 50,
    });
    engines.push(e);
    return e;
  };
  /** Stop every engine and the scheduler; KEEP: leave the stores open (the state lives on in STATE for a restart). */
  const close = async (o: { keep?: boolean } = {}) => {
    for (const e of engines) e.close();
    scheduler.close();
    if (o.keep) return;
    await store.close();
    await jobs.close();
  };
  return { jobs, bus, live, scheduler, store, router, endJob, connect, engine, close };
}
export type World = Awaited<ReturnType<typeof world>>;

/** A cluster hub's driving: it may act, and another hub counts as alive, while ALIVE has its name. */
export function clusterDriving(hub: string, alive: Set<string>): RolloutDriving {
  return {
    hub, run: `run-${hub}`,
    mayAct: () => alive.has(hub),
    alive: (d) => alive.has(d.hub) && d.run === `run-${d.hub}`,
    successor: () => [...alive].sort()[0] === hub,
  };
}
