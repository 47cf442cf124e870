// Ownership and fencing on a real 3-node NATS cluster, in process: two hubs'
// holders and job stores over one prefix. The newest claim of a host wins and
// the hub that lost it closes its session (REPLACED); a hub that lost a host
// cannot write that host's job records (the epoch in every record, checked on
// every compare-and-swap write); a hub whose own heartbeat stops coming back
// (NATS away, or paused) stops vouching for any host; a dead hub's hosts read
// as offline at the others.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Hello } from '../../common/protocol/messages.js';
import { BentoError } from '../../common/protocol/errors.js';
import { silentLogger } from '../../common/platform/log.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { ClusterHolders } from '../../hub/cluster/holds.js';
import { isHoldEntry, type HoldEntry } from '../../hub/cluster/hold-records.js';
import { livenessTiming } from '../../hub/cluster/liveness.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import type { LiveSession } from '../../hub/server/live-session.js';
import { startNatsCluster } from '../fixtures/nats.js';
import { dropPrefix } from '../helpers/cluster.js';
import { waitFor } from '../helpers/proc.js';

const nats = await startNatsCluster();
after(() => nats.stop());
const log = silentLogger();
let cases = 0;

async function hub(prefix: string, name: string): Promise<NatsStateBackend> {
  return NatsStateBackend.open(parseClusterOptions({ servers: nats.urls, hubName: name, prefix, replicas: 3, outputMaxBytes: 16 * 1024 * 1024 }), log);
}

interface Fake { s: LiveSession; closedWith: string[] }
function session(name: string): Fake {
  const closedWith: string[] = [];
  const hello: Hello = { type: 'hello', protocol: 1, name, agentVersion: 't', system: null, generation: null, configHash: null, capabilities: [] };
  const s = {
    name, hello, closed: false, connectedSince: Date.now(), lastInbound: Date.now(),
    origin: { carrier: 'ssh', endpoint: 'ssh://127.0.0.1:1', remoteAddress: '127.0.0.1:9' },
    close(code: string) { closedWith.push(code); this.closed = true; },
  };
  return { s: s as unknown as LiveSession, closedWith };
}

function sessionsOf(list: Fake[]): { get(h: string): LiveSession | undefined; all(): LiveSession[] } {
  return { get: (h) => list.find((f) => f.s.name === h && !f.s.closed)?.s, all: () => list.map((f) => f.s) };
}

function job(id: string, host: string, state: JobRecord['state']): JobRecord {
  return { id, host, action: 'switch', state, requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null };
}

test('the newest claim wins; the loser closes its session as REPLACED and may no longer write the host\'s job records', async () => {
  const prefix = `f${++cases}x${process.pid}`;
  const [ba, bb] = [await hub(prefix, 'ha'), await hub(prefix, 'hb')];
  const timing = livenessTiming(300);
  const inA: Fake[] = [];
  const inB: Fake[] = [];
  const sa = await ba.openKeyed<HoldEntry>('holds', { accept: isHoldEntry });
  const sb = await bb.openKeyed<HoldEntry>('holds', { accept: isHoldEntry });
  const A = new ClusterHolders({ store: sa, hubName: 'ha', run: 'ra', sessions: sessionsOf(inA), timing, log });
  const B = new ClusterHolders({ store: sb, hubName: 'hb', run: 'rb', sessions: sessionsOf(inB), timing, log });
  const lostAtA: string[] = [];
  A.onLost((host, by) => lostAtA.push(`${host}>${by}`));
  try {
    await Promise.all([A.start(), B.start()]);
    const ja = await JobStore.open(ba, { history: 10, log, fence: A });
    const jb = await JobStore.open(bb, { history: 10, log, fence: B });
    // ha holds web1 and runs a job on it.
    const fa = session('web1');
    inA.push(fa);
    await A.claim(fa.s);
    assert.deepEqual(A.stamp('web1'), { hub: 'ha', epoch: 1 });
    await waitFor('hb sees ha hold web1', () => B.holder('web1')?.hub === 'ha', 5000, 20);
    assert.throws(() => B.stamp('web1'), (e: unknown) => e instanceof BentoError && e.code === 'STATE_CONFLICT', 'hb may not write web1\'s jobs while ha holds it');
    await ja.save(job('jobaaaaaaaa1', 'web1', 'running'));
    await waitFor('hb sees the job', () => jb.get('jobaaaaaaaa1')?.epoch === 1, 5000, 20);
    // web1's agent comes to hb: hb claims it (epoch 2) and re-stamps its open job.
    const fb = session('web1');
    inB.push(fb);
    await B.claim(fb.s);
    assert.deepEqual(B.stamp('web1'), { hub: 'hb', epoch: 2 });
    await jb.save({ ...jb.get('jobaaaaaaaa1')!, state: 'running' });
    await waitFor('ha lost web1', () => fa.closedWith.includes('REPLACED'), 5000, 20);
    assert.deepEqual(lostAtA, ['web1>hb']);
    assert.throws(() => A.stamp('web1'), (e: unknown) => e instanceof BentoError && e.code === 'STATE_CONFLICT');
    // ha's late verdict (its agent "disconnected") is refused, whatever fence it had.
    await assert.rejects(ja.save({ ...ja.get('jobaaaaaaaa1')!, state: 'interrupted', reason: 'connection to the agent was lost' }), /STATE_CONFLICT|held by hub hb/);
    // Even a hub whose fence still says it holds the host (it has not heard of the claim yet) cannot:
    // the record it would overwrite carries the newer epoch.
    const stale = await JobStore.open(ba, { history: 10, log, fence: { stamp: () => ({ hub: 'ha', epoch: 1 }) } });
    await waitFor('the stale store sees the newer record', () => stale.get('jobaaaaaaaa1')?.epoch === 2, 5000, 20);
    await assert.rejects(stale.save({ ...stale.get('jobaaaaaaaa1')!, state: 'interrupted' }), (e: unknown) => e instanceof BentoError && e.code === 'STATE_CONFLICT');
    await jb.save({ ...jb.get('jobaaaaaaaa1')!, state: 'success', endedAt: new Date().toISOString() });
    await waitFor('every hub sees the result', () => ja.get('jobaaaaaaaa1')?.state === 'success', 5000, 20);
    // A queued job for a host nobody holds gets the same id at every hub.
    assert.equal(A.queuedJobId('db1'), B.queuedJobId('db1'));
    await Promise.all([ja.close(), jb.close(), stale.close()]);
  } finally {
    await A.close();
    await B.close();
    await ba.close();
    await bb.close();
    await dropPrefix(nats.urls, prefix);
  }
});

test('a hub whose heartbeat stops coming back stops vouching; the others see it dead and its hosts offline', async () => {
  const prefix = `f${++cases}x${process.pid}`;
  const [ba, bb] = [await hub(prefix, 'ha'), await hub(prefix, 'hb')];
  const timing = livenessTiming(200);
  const inA: Fake[] = [];
  const sa = await ba.openKeyed<HoldEntry>('holds', { accept: isHoldEntry });
  const sb = await bb.openKeyed<HoldEntry>('holds', { accept: isHoldEntry });
  const A = new ClusterHolders({ store: sa, hubName: 'ha', run: 'ra', sessions: sessionsOf(inA), timing, log });
  const B = new ClusterHolders({ store: sb, hubName: 'hb', run: 'rb', sessions: sessionsOf([]), timing, log });
  try {
    await Promise.all([A.start(), B.start()]);
    const f = session('web2');
    inA.push(f);
    await A.claim(f.s);
    await waitFor('hb lists web2 at ha', () => B.all().some((h) => h.host === 'web2' && h.hub === 'ha'), 5000, 20);
    // ha's beats stop (what NATS away, or a frozen process, look like from both sides).
    clearInterval(A.liveness['timer']!);
    await waitFor('ha stops vouching', () => { try { A.stamp('web2'); return false; } catch (e) { return (e as BentoError).code === 'CLUSTER_UNAVAILABLE'; } }, 5000, 20);
    await waitFor('hb sees ha dead and web2 offline', () => B.holder('web2') === null && B.hubs().find((h) => h.name === 'ha')?.alive === false, 5000, 20);
    assert.equal(f.closedWith.length, 0, 'the session itself stays (the agent keeps its results until the hub can record them)');
  } finally {
    await A.close();
    await B.close();
    await ba.close();
    await bb.close();
    await dropPrefix(nats.urls, prefix);
  }
});
