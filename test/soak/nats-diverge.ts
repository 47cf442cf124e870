// Raw @nats-io repro (no Bento code): does a replicated stream on this
// nats-server keep one numbering on every replica after kill -9 and restart
// of a follower, while some publishes fail when applied (the stream-wide
// "expected last sequence" that hub/cluster/kv-cas.ts sends on < 2.9.21)?
// Prints each replica's view (the leader is stepped down in turn) and checks
// every acknowledged publish against it. docs/cluster.md "Soak" has what it
// showed on Debian's 2.9.10 (upstream: nats-server#5821).
//
//   node dist/test/soak/nats-diverge.js               # half the publishes guarded, kill a follower
//   GUARDED=0 node dist/test/soak/nats-diverge.js     # no guarded publishes: no divergence seen
//   PHASE2=1 ...                                      # then write under the restarted node as leader
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import { startNatsCluster } from '../fixtures/nats.js';
import { sleep } from '../helpers/proc.js';

const GUARDED = process.env['GUARDED'] !== '0';
const KILL = process.env['KILL'] ?? 'follower';
const cluster = await startNatsCluster();
const STREAM = 'DIV';
let nc: NatsConnection | null = null;
try {
  nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  const jsm = await jetstreamManager(nc, { timeout: 5000 });
  await jsm.streams.add({ name: STREAM, subjects: ['div.>'], num_replicas: 3, storage: StorageType.File, max_msgs_per_subject: 1, allow_direct: true });
  const js = jetstream(nc, { timeout: 2000 });
  const acked = new Map<string, { seq: number; body: string }>();
  let last = 0;
  let stop = false;
  let refusedAtApply = 0;
  let n = 0;
  const writer = async (w: number): Promise<void> => {
    while (!stop) {
      const key = `k${w}_${n++ % 40}`;
      const body = `${key}:${n}`;
      try {
        // Half the publishes expect the stream's last sequence (as the CAS guard does): racing writers fail when applied.
        const guarded = GUARDED && n % 2 === 0;
        const pa = await js.publish(`div.${key}`, body, { msgID: `m${n}`, timeout: 2000, ...(guarded ? { expect: { lastSequence: last } } : {}) });
        last = Math.max(last, pa.seq);
        acked.set(key, { seq: pa.seq, body });
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === 10071) refusedAtApply++;
        else await sleep(100);
      }
    }
  };
  const ws = Array.from({ length: 6 }, (_, i) => writer(i));
  await sleep(3000);
  const leader = await cluster.streamLeader(STREAM);
  const victim = KILL === 'leader' ? leader : (leader + 1) % 3;
  console.log(`# ${acked.size} keys acked, ${refusedAtApply} refused so far; kill -9 ${cluster.nodes[victim]!.name} (leader ${cluster.nodes[leader]!.name})`);
  await cluster.kill(victim);
  await sleep(2000);
  await cluster.restart(victim);
  await sleep(5000);
  stop = true;
  await Promise.all(ws);
  console.log(`# stopped: ${acked.size} keys, last acked seq ${last}, ${refusedAtApply} refused (wrong last sequence)`);
  await sleep(2000);
  if (process.env['PHASE2']) {
    // Make the restarted node the leader, then write plain (never refused) messages under it.
    for (let i = 0; i < 8 && (await cluster.streamLeader(STREAM)) !== victim; i++) {
      await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${STREAM}`, '', { timeout: 5000 }).catch(() => undefined);
      await sleep(1500);
    }
    console.log(`# phase 2 under leader ${cluster.nodes[await cluster.streamLeader(STREAM)]!.name}`);
    for (let i = 0; i < 200; i++) {
      const key = `p2_${i}`;
      try { const pa = await js.publish(`div.${key}`, key, { msgID: key, timeout: 2000 }); acked.set(key, { seq: pa.seq, body: key }); } catch { /* counted as not acked */ }
    }
    console.log(`# phase 2: ${[...acked.keys()].filter((k) => k.startsWith('p2_')).length}/200 acked`);
  }
  // Each replica as leader in turn: what it holds for every key.
  for (let round = 0; round < 3; round++) {
    const li = await cluster.streamLeader(STREAM);
    const si = await jsm.streams.info(STREAM);
    let wrongSeq = 0, missing = 0, wrongBody = 0;
    const eg: string[] = [];
    for (const [key, a] of acked) {
      const m = await jsm.streams.getMessage(STREAM, { last_by_subj: `div.${key}` }).catch(() => null);
      if (!m) { missing++; if (eg.length < 3) eg.push(`${key} missing (acked ${a.seq})`); continue; }
      const body = new TextDecoder().decode(m.data);
      if (body !== a.body) { wrongBody++; if (eg.length < 3) eg.push(`${key} holds ${body}@${m.seq}, acked ${a.body}@${a.seq}`); }
      else if (m.seq !== a.seq) { wrongSeq++; if (eg.length < 3) eg.push(`${key} at seq ${m.seq}, acked ${a.seq}`); }
    }
    console.log(`leader ${cluster.nodes[li]!.name}: last_seq ${si.state.last_seq} msgs ${si.state.messages}; acked keys: ${missing} missing, ${wrongBody} older/other content, ${wrongSeq} same content at another seq ${eg.join('; ')}`);
    await jsm.streams.info(STREAM); // settle
    await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${STREAM}`, '', { timeout: 5000 }).catch(() => undefined);
    for (let i = 0; i < 50 && (await cluster.streamLeader(STREAM).catch(() => li)) === li; i++) await sleep(200);
  }
} finally {
  await nc?.close();
  await cluster.stop();
}
