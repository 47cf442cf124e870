// Self-test of the NATS fixture (test/fixtures/nats.ts): a real 3-node
// JetStream cluster comes up on free loopback ports, replicates a stream over
// all three, keeps serving after kill -9 of that stream's leader, takes the
// node back on a restart, and leaves no process behind.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { waitFor } from '../helpers/proc.js';

let cluster: NatsCluster;
let nc: NatsConnection;
const pids: number[] = [];

before(async () => {
  cluster = await startNatsCluster();
  for (const n of cluster.nodes) pids.push(n.daemon!.child.pid!);
  nc = await connect({ servers: cluster.urls, timeout: 5000, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
});

after(async () => {
  await nc?.close();
  await cluster?.stop();
});

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Publish until one is acknowledged; resolves with the ms it took (bounded). */
async function publishUntilAcked(subject: string, data: string, limitMs: number): Promise<number> {
  const js = jetstream(nc);
  const t0 = Date.now();
  let last: unknown;
  while (Date.now() - t0 < limitMs) {
    try {
      await js.publish(subject, data, { timeout: 1000, msgID: `fixture-${data}` });
      return Date.now() - t0;
    } catch (err) { last = err; }
  }
  throw new Error(`no ack within ${limitMs} ms: ${String(last)}\n${cluster.logs()}`);
}

test('three servers on distinct free ports, one metadata leader, a stream replicated on all three', async () => {
  assert.equal(cluster.nodes.length, 3);
  const ports = cluster.nodes.flatMap((n) => [n.clientPort, n.routePort]);
  assert.equal(new Set(ports).size, 6);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'FIXTURE', subjects: ['fixture.>'], num_replicas: 3 });
  await publishUntilAcked('fixture.a', 'one', 10_000);
  const info = await jsm.streams.info('FIXTURE');
  assert.equal(info.state.messages, 1);
  assert.equal((info.cluster?.replicas ?? []).length + 1, 3, 'leader + 2 replicas');
  assert.ok(cluster.nodes.every((n) => pids.includes(n.daemon!.child.pid!)));
});

test('kill -9 of the stream leader: the cluster still stores and serves; the node comes back on restart', async () => {
  const leader = await cluster.streamLeader('FIXTURE');
  const pid = cluster.nodes[leader]!.daemon!.child.pid!;
  await cluster.kill(leader);
  assert.equal(alive(pid), false, 'killed by PID');
  assert.equal(cluster.nodes[leader]!.daemon, null);
  const ms = await publishUntilAcked('fixture.a', 'two', 20_000);
  console.log(`# first ack after kill -9 of the stream leader: ${ms} ms`);
  const newLeader = await waitFor('a new leader', async () => {
    const i = await cluster.streamLeader('FIXTURE');
    return i !== leader ? i + 1 : null;
  }, 20_000) - 1;
  assert.notEqual(newLeader, leader);
  const jsm = await jetstreamManager(nc);
  assert.equal((await jsm.streams.getMessage('FIXTURE', { last_by_subj: 'fixture.a' }))?.string(), 'two');

  await cluster.restart(leader);
  pids.push(cluster.nodes[leader]!.daemon!.child.pid!);
  // The restarted node rejoins and catches up: it shows up as a current replica (or leads again).
  await waitFor('restarted node is current', async () => {
    const info = await jsm.streams.info('FIXTURE');
    const back = info.cluster?.replicas?.find((r) => r.name === cluster.nodes[leader]!.name);
    return back?.current === true || info.cluster?.leader === cluster.nodes[leader]!.name;
  }, 20_000);
});

test('stop() kills every server it started, by PID', async () => {
  await nc.close();
  await cluster.stop();
  for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} still alive`);
  await cluster.stop(); // idempotent
});
