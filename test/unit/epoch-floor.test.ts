// Claim epochs stay above the host's job records, and a job whose record
// carries a newer claim than this hub's is not sent. nats-server 2.9.10 lost
// an acknowledged claim after kill -9 (the 20-cycle soak: the holds bucket's
// leader went back to an older claim while a job queued under the lost
// epoch stayed); the next claim, from the hold record alone, got an epoch
// below that job's, every write of the job was refused, and its hub sent it
// to the agent twice. Logic on the memory backend: the holds and the
// scheduler do not care which store they run on (real NATS: the cluster
// integration tests and the soak).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import type { Hello, HubMessage } from '../../common/protocol/messages.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { ClusterHolders } from '../../hub/cluster/holds.js';
import { livenessTiming } from '../../hub/cluster/liveness.js';
import { isHoldEntry, type HoldEntry, type HostHold } from '../../hub/cluster/hold-records.js';
import type { LiveSession } from '../../hub/server/live-session.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import { Scheduler } from '../../hub/jobs/scheduler.js';
import { LocalEventBus } from '../../hub/events/bus.js';

const log = silentLogger();
const hello = (name: string): Hello => ({ type: 'hello', protocol: 1, name, agentVersion: 't', system: null, generation: null, configHash: null, capabilities: [] });

function session(name: string): LiveSession & { sent: HubMessage[] } {
  const sent: HubMessage[] = [];
  const s = {
    name, hello: hello(name), closed: false, connectedSince: Date.now(), lastInbound: Date.now(), sent,
    origin: { carrier: 'ssh', endpoint: 'ssh://127.0.0.1:1', remoteAddress: '127.0.0.1:9' },
    close() { this.closed = true; },
    send(m: HubMessage) { sent.push(m); return true; },
  };
  return s as unknown as LiveSession & { sent: HubMessage[] };
}

const hold = (host: string, epoch: number): HostHold => ({
  t: 'host', host, hub: null, run: 'gone', epoch, since: new Date().toISOString(), carrier: 'ssh', remoteAddress: '127.0.0.1:9',
  endpoint: 'ssh://127.0.0.1:1', via: null, agentVersion: 't', system: null, generation: null, configHash: null, capabilities: [],
});
const queued = (epoch: number): JobRecord => ({
  id: `q${epoch}_epochfloortestjob0000`, host: 'web1', action: 'switch', state: 'queued', hub: 'hub3', epoch,
  requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null,
});

async function setup(): Promise<{ holders: ClusterHolders; store: JobStore; live: Map<string, LiveSession>; close: () => Promise<void> }> {
  const state = new MemoryState();
  const backend = new MemoryBackend(state);
  const holds = await backend.openKeyed<HoldEntry>('holds', { accept: isHoldEntry });
  await holds.set('web1', hold('web1', 2)); // the hold as the leader kept it: the claim at epoch 4 was lost
  const other = await JobStore.open(new MemoryBackend(state), { history: 10, log, fence: { stamp: () => ({ hub: 'hub3', epoch: 4 }) } });
  await other.save(queued(4)); // queued under the lost claim
  await other.close();
  const live = new Map<string, LiveSession>();
  const holders = new ClusterHolders({ store: holds, hubName: 'hub2', run: 'r2', sessions: { get: (h) => live.get(h), all: () => [...live.values()] }, timing: livenessTiming(200), log });
  await holders.start();
  const store = await JobStore.open(backend, { history: 10, log, fence: holders });
  return { holders, store, live, close: async () => { await store.close(); await holders.close(); await holds.close(); } };
}

test('a claim takes an epoch above the host\'s open job records, not only above its hold record', async () => {
  const { holders, store, live, close } = await setup();
  holders.floorEpochs((host) => store.openEpoch(host));
  const s = session('web1');
  live.set('web1', s);
  await holders.claim(s);
  assert.equal(holders.stamp('web1')?.epoch, 5, 'above the queued job\'s epoch 4, not 3');
  // And the job queued under the lost claim can be written, so it runs.
  const scheduler = new Scheduler({ store, sessions: { get: (h) => live.get(h) }, bus: new LocalEventBus(log), holders, log });
  await scheduler.onHello(s, s.hello!);
  assert.deepEqual(s.sent.map((m) => m.type), ['job.start']);
  await store.settled();
  assert.equal(store.get(queued(4).id)?.epoch, 5);
  await close();
});

test('without the floor the claim is below the job\'s epoch: the job is never sent under the older claim; the holder raises its claim above the job\'s and then sends it once', async () => {
  const { holders, store, live, close } = await setup();
  const s = session('web1');
  live.set('web1', s);
  await holders.claim(s);
  assert.equal(holders.stamp('web1')?.epoch, 3);
  // A scheduler whose holders cannot raise a claim: the guard alone. Its record would refuse every write, and it would be sent again.
  const guardOnly = { hubName: holders.hubName, holder: (h: string) => holders.holder(h), queuedJobId: (h: string) => holders.queuedJobId(h), settlesOrphans: () => holders.settlesOrphans(), hubAlive: (h: string) => holders.hubAlive(h) };
  const held = new Scheduler({ store, sessions: { get: (h) => live.get(h) }, bus: new LocalEventBus(log), holders: guardOnly, log });
  await held.onHello(s, s.hello!);
  await held.onHello(s, s.hello!);
  assert.deepEqual(s.sent.map((m) => m.type), [], 'never sent under the older claim');
  await held.close();
  // The cluster's holders raise the claim (the soak: such a job waited until its host moved to another hub).
  const scheduler = new Scheduler({ store, sessions: { get: (h) => live.get(h) }, bus: new LocalEventBus(log), holders, log });
  await scheduler.onHello(s, s.hello!);
  assert.deepEqual(s.sent.map((m) => m.type), ['job.start'], 'sent once the claim is above the job\'s');
  assert.equal(holders.stamp('web1')?.epoch, 5, 'raised above the job\'s epoch 4');
  await store.settled();
  assert.equal(store.get(queued(4).id)?.epoch, 5, 'the job\'s records are written under the raised claim');
  await scheduler.onHello(s, s.hello!);
  assert.equal(s.sent.filter((m) => m.type === 'job.start').length, 1, 'and only once');
  await close();
});

test('a claim is raised only on this hub\'s own hold with its session here: a host it let go answers false and keeps its record', async () => {
  const { holders, live, close } = await setup();
  const s = session('web1');
  live.set('web1', s);
  await holders.claim(s);
  s.closed = true;
  live.delete('web1');
  holders.release(s);
  assert.equal(await holders.raiseClaim('web1', 4), false);
  assert.equal(await holders.raiseClaim('nosuchhost', 4), false);
  await close();
});
