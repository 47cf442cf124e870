// A record NATS acknowledged in a state no write takes back (a job's
// outcome), which the bucket later shows in an earlier state, is written back
// by a hub whose view had it (hub/cluster/kv-view-progress.ts keepSettled,
// kv-write-back.ts), on a real 3-node cluster.
//
// In the soak this came from a nats-server 2.9.10 replica that missed writes
// and then led the stream (docs/cluster.md "Soak"); making the server do that
// on purpose takes minutes and does not always work (cluster-replica-check
// shows the recipe). What the hub meets is the same either way: the bucket's
// last record of the key is the earlier state, at a revision of its own. Here
// a plain client puts the earlier record, a real write on the real stream.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { silentLogger, type Logger } from '../../common/platform/log.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { leaderLast } from '../../hub/cluster/kv-leader.js';
import type { RecordProgress } from '../../hub/store/types.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { waitFor } from '../helpers/proc.js';
import { captureLog } from '../helpers/log-capture.js';

interface Rec { state: 'running' | 'success' | 'interrupted'; n: number }
const isRec = (_k: string, v: unknown): v is Rec => typeof (v as Rec | null)?.n === 'number';
const RANK = { running: 0, success: 1, interrupted: 1 } as const;
/** As the jobs store's (job-record.ts JOB_PROGRESS): success is an agent's outcome; interrupted is the hub's verdict, which an agent may contradict. */
const PROGRESS: RecordProgress<Rec> = {
  settled: (r) => r.state !== 'running',
  ahead: (a, b) => RANK[a.state] > RANK[b.state],
  irreversible: (r) => r.state === 'success',
};
const PREFIX = 'wb';
const BUCKET = `${PREFIX}_jobs`;

let cluster: NatsCluster;
let nc: NatsConnection;
let jsm: JetStreamManager;
const backends: NatsStateBackend[] = [];

async function store(hubName: string, log: Logger = silentLogger()) {
  const b = await NatsStateBackend.open(parseClusterOptions({ servers: cluster.urls, hubName, prefix: PREFIX, replicas: 3 }), log);
  backends.push(b);
  return b.openKeyed<Rec>('jobs', { accept: isRec, progress: PROGRESS });
}

/** The stream leader's last record of KEY. */
async function atLeader(key: string): Promise<Rec | null> {
  const r = await leaderLast(jsm, `KV_${BUCKET}`, `$KV.${BUCKET}.${key}`);
  return r?.kind === 'PUT' && isRec(key, r.value) ? r.value : null;
}

before(async () => {
  cluster = await startNatsCluster();
  nc = await connect({ servers: cluster.urls });
  jsm = await jetstreamManager(nc, { timeout: 5000 });
});
after(async () => {
  for (const b of backends) await b.close().catch(() => undefined);
  await nc?.close();
  await cluster?.stop();
});

test('an acknowledged outcome the bucket shows in an earlier state again is written back; a hub that loads meanwhile shows it once written', async () => {
  const a = await store('hub-a');
  await a.set('j1', { state: 'running', n: 1 });
  await a.set('j1', { state: 'success', n: 2 });
  await a.set('j2', { state: 'running', n: 1 });
  await a.set('j2', { state: 'interrupted', n: 2 });
  // The bucket loses both ends: its last records are the running ones again.
  await nc.publish(`$KV.${BUCKET}.j1`, JSON.stringify({ state: 'running', n: 1 }));
  await nc.publish(`$KV.${BUCKET}.j2`, JSON.stringify({ state: 'running', n: 1 }));
  await nc.flush();
  await waitFor('the outcome written back at the leader', async () => (await atLeader('j1'))?.state === 'success' || null, 15_000, 100);
  assert.deepEqual(a.get('j1'), { state: 'success', n: 2 }, 'hub a kept showing the outcome');
  // Interrupted is the hub's verdict: the agent may say it still runs the job, and that is taken.
  await waitFor('hub a took running over interrupted', () => a.get('j2')?.state === 'running' || null, 15_000, 50);
  assert.equal((await atLeader('j2'))?.state, 'running');

  // A hub that loads after the loss and before any write back shows the bucket's record until one comes.
  await nc.publish(`$KV.${BUCKET}.j1`, JSON.stringify({ state: 'running', n: 1 }));
  await nc.flush();
  const b = await store('hub-b');
  await waitFor('hub b shows the outcome', () => b.get('j1')?.state === 'success' || null, 15_000, 50);
  await waitFor('the leader holds it', async () => (await atLeader('j1'))?.state === 'success' || null, 15_000, 100);
  assert.deepEqual(a.get('j1'), { state: 'success', n: 2 });
});

test('a leader election of the stream makes a hub check its acknowledged outcomes at the new leader', async () => {
  // What a new leader that missed writes would lose cannot be made on purpose (see the top); that the election is
  // heard, on the server's real advisory subject, and the outcomes are looked up at the new leader, can.
  const { log, lines } = captureLog('debug');
  const c = await store('hub-c', log);
  await c.set('j3', { state: 'success', n: 2 });
  const stream = `KV_${BUCKET}`;
  const before = await cluster.streamLeader(stream);
  await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, '', { timeout: 10_000 });
  const checked = await waitFor('the outcomes check at the new leader', () => lines().find((l) => l['msg'] === 'checked acknowledged outcomes at the new stream leader') ?? null, 30_000, 50);
  assert.ok((checked['checked'] as number) >= 1, `outcomes looked up: ${JSON.stringify(checked)}`);
  assert.notEqual(await cluster.streamLeader(stream), before, 'the leader changed');
});
