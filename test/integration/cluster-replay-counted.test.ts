// A result recorded at one hub and replayed at another whose view has not
// caught up is acknowledged there, not recorded and counted again
// (docs/web.md, "Counters start at zero"). Hub a records an agent's result
// (durable at the stream leader) and "dies" before its ack reaches the agent;
// the agent replays the result at hub b, whose view of the job record lags:
// its bucket watch runs on a nats-server frozen (SIGSTOP) meanwhile, as in
// cluster-watch-skipped. Before, b saw the job running, published its end
// (bento_jobs_total counted it at both hubs) and wrote it again over a's
// record with its own end time. Now b reads the record at the stream leader
// first (KeyedStore.latest), finds the same result there, and only
// acknowledges it. Real 3-node NATS cluster, the production job stores and
// JobEnds, and each hub's real metrics over its own bus.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { Hello, HubMessage, JobEnd } from '../../common/protocol/messages.js';
import { silentLogger } from '../../common/platform/log.js';
import { newJobIdBody } from '../../common/protocol/names.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { leaderLast } from '../../hub/cluster/kv-leader.js';
import { encodeToken } from '../../hub/cluster/names.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import { JobEnds } from '../../hub/jobs/job-end.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { LocalHolders } from '../../hub/holders/local.js';
import { HubMetrics } from '../../hub/metrics/hub-metrics.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { dropPrefix } from '../helpers/cluster.js';
import { sleep, waitFor } from '../helpers/proc.js';

const log = silentLogger();
let nats: NatsCluster;
before(async () => { nats = await startNatsCluster(); });
after(async () => { await nats?.stop(); });

interface Session { name: string; hello: Hello | null; closed: boolean; sent: HubMessage[]; send(m: HubMessage): boolean }
const session = (): Session => ({ name: 'web1', hello: null, closed: false, sent: [], send(m) { this.sent.push(m); return true; } });

/** A hub: its backend on node 0, job store writing under claim EPOCH, job ends and metrics on its own bus. */
async function hub(prefix: string, name: string, epoch: number) {
  const backend = await NatsStateBackend.open(parseClusterOptions({ servers: [nats.urls[0]!], hubName: name, prefix, replicas: 3, outputMaxBytes: 16 * 1024 * 1024 }), log);
  const store = await JobStore.open(backend, { history: 100, log, fence: { stamp: () => ({ hub: name, epoch }) } });
  const bus = new LocalEventBus(log);
  const ends = new JobEnds({
    store, bus, log, adopter: { adopt: async () => undefined }, active: new Map(), settled: () => undefined,
    dispatchPending: async () => undefined, later: () => undefined,
  });
  const metrics = new HubMetrics({
    bus, sources: {
      registry: { snapshot: { hosts: {} } as never, refresh: async () => ({ hosts: {} }) as never },
      holders: new LocalHolders({ get: () => undefined, all: () => [] }),
      activeJob: () => undefined, jobs: store, facts: { get: () => undefined },
      published: { get: () => null, refresh: async () => undefined },
    },
  });
  /** bento_jobs_total{outcome="success",action="switch"} as this hub's metrics page shows it. */
  const successes = (): number => {
    const line = metrics.render().split('\n').find((l) => l.startsWith('bento_jobs_total{') && l.includes('outcome="success"') && l.includes('action="switch"'));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  return { backend, store, ends, successes, close: async () => { await store.close(); await backend.close(); } };
}
type Hub = Awaited<ReturnType<typeof hub>>;

async function consumers(jsm: JetStreamManager, stream: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const ci of jsm.consumers.list(stream)) out.set(ci.name, nats.nodes.findIndex((x) => x.name === ci.cluster?.leader));
  return out;
}

/** Hubs a and b on node 0, b's bucket watch on another node that does not lead the jobs stream (that node is `frozen` later). */
async function hubsWithBWatchedElsewhere(round: number): Promise<{ a: Hub; b: Hub; jsm: JetStreamManager; stream: string; frozen: number; prefix: string }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const prefix = `replay${round}x${attempt}`;
    const stream = `KV_${prefix}_jobs`;
    const a = await hub(prefix, 'hub-a', 1);
    let b: Hub | null = null;
    let found = false;
    try {
      const jsm = await jetstreamManager(a.backend.nc);
      const before = await consumers(jsm, stream);
      b = await hub(prefix, 'hub-b', 2);
      const mine = [...(await consumers(jsm, stream)).entries()].filter(([n]) => !before.has(n));
      const c = mine.length === 1 ? mine[0]![1] : -1;
      if (c > 0) {
        if (await nats.streamLeader(stream) === c) {
          await a.backend.nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, '', { timeout: 10_000 });
          for (let i = 0; i < 200 && await nats.streamLeader(stream).catch(() => c) === c; i++) await sleep(50);
        }
        if (await nats.streamLeader(stream) !== c && (await consumers(jsm, stream)).get(mine[0]![0]) === c) {
          found = true;
          return { a, b, jsm, stream, frozen: c, prefix };
        }
      }
    } finally {
      if (!found) {
        await b?.close();
        await a.close();
        await dropPrefix(nats.urls, prefix);
      }
    }
  }
  throw new Error('no hub b with its watch on a follower of the jobs stream in 20 attempts');
}

test('a result replayed at a hub whose view of its record lags is acknowledged, not written again nor counted there', async () => {
  for (let round = 0; round < 2; round++) {
    const { a, b, jsm, stream, frozen, prefix } = await hubsWithBWatchedElsewhere(round);
    const server = nats.nodes[frozen]!.daemon!.child;
    try {
      const rec: JobRecord = {
        id: newJobIdBody(), host: 'web1', action: 'switch', state: 'running', requestedAt: new Date().toISOString(),
        startedAt: new Date().toISOString(), endedAt: null, exitCode: null, durationMs: null, reason: null,
      };
      await a.store.save(rec);
      await waitFor('b sees the job running', () => b.store.get(rec.id)?.state === 'running' || null, 10_000, 10);
      const result: JobEnd = { type: 'job.end', jobId: rec.id, action: 'switch', outcome: 'success', exitCode: 0, startedAt: rec.startedAt!, durationMs: 1234 };
      const atLeader = async () => leaderLast(jsm, stream, `$KV.${stream.slice(3)}.${encodeToken(rec.id)}`);
      const toB = session();
      server.kill('SIGSTOP');
      try {
        // Hub a records the result (durable: acknowledged by the leader and the third node); its ack never reaches the agent.
        await a.ends.onJobEnd(session(), result);
        const recorded = await atLeader();
        assert.equal((recorded?.value as JobRecord | undefined)?.state, 'success');
        assert.equal(b.store.get(rec.id)?.state, 'running', `round ${round}: b's view must lag for this test to show anything`);
        // The agent replays it at hub b.
        await b.ends.onJobEnd(toB, { ...result, replayed: true });
        const now = await atLeader();
        const seen = {
          sentByB: toB.sent, revision: now?.revision, endedAt: (now?.value as JobRecord).endedAt,
          writer: (now?.value as JobRecord).hub, countedAtA: a.successes(), countedAtB: b.successes(),
        };
        const expected = {
          sentByB: [{ type: 'job.ack', jobId: rec.id }], revision: recorded?.revision, endedAt: (recorded?.value as JobRecord).endedAt,
          writer: 'hub-a', countedAtA: 1, countedAtB: 0,
        };
        assert.deepEqual(seen, expected, `round ${round}: b acknowledges the replay, neither writes it again nor counts it`);
      } finally {
        server.kill('SIGCONT');
      }
      // b's view catches up with a's record once its watch's server is back.
      await waitFor('b shows a\'s record', () => b.store.get(rec.id)?.endedAt === a.store.get(rec.id)?.endedAt || null, 15_000, 20);
    } finally {
      await b.close();
      await a.close();
      await dropPrefix(nats.urls, prefix);
    }
  }
});
