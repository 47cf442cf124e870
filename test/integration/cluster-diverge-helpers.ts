// Making Debian's nats-server 2.9.10 number one KV stream differently on one
// replica (nats-server#5821; docs/cluster.md "Soak"), and placing a store's
// watch on that replica; and the rig both tests start from. Shared by
// cluster-nats-kill and cluster-watch-reload.
//
// The recipe (test/soak/nats-diverge.ts shows it with the client library
// alone): publishes that race on the stream's last sequence (the guard
// kv-cas.ts sends below 2.9.21), so most are refused when applied, while a
// follower of the stream is killed with -9 and restarted. The restarted
// replica then numbers later records otherwise (above the others in every run
// seen). The server places a new watch on a replica of its choosing, so a
// caller opens stores until one's watch is on the restarted replica.
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../common/platform/log.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions, type ClusterOptions } from '../../hub/cluster/options.js';
import type { KeyedStore, RecordProgress } from '../../hub/store/types.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { sleep } from '../helpers/proc.js';

/** What both tests start from: a 3-node cluster, hub a on it, and a plain connection for the races and the leader's view. */
export interface DivergeRig {
  cluster: NatsCluster;
  a: NatsStateBackend;
  nc: NatsConnection;
  jsm: JetStreamManager;
  /** A hub's backend on the cluster (with 3 replicas); close() closes it too (closing twice is harmless). */
  open(hubName: string): Promise<NatsStateBackend>;
  /** A hub's backend and its keyed store NAME (checked against the leader with PROGRESS), for placeWatchOn; the backend is closed again when the store does not open. */
  openWithStore<T>(hubName: string, name: string, accept: (key: string, value: unknown) => value is T, progress?: RecordProgress<T>): Promise<{ b: NatsStateBackend; s: KeyedStore<T>; close: () => Promise<void> }>;
  /** The connection, every backend opened, then the cluster. */
  close(): Promise<void>;
}

export async function openDivergeRig(o: { prefix: string; log: Logger; options?: Partial<ClusterOptions> }): Promise<DivergeRig> {
  const cluster = await startNatsCluster();
  const backends: NatsStateBackend[] = [];
  let nc: NatsConnection | null = null;
  const close = async (): Promise<void> => {
    await nc?.close();
    for (const b of backends) await b.close().catch(() => undefined);
    await cluster.stop();
  };
  const open = async (hubName: string): Promise<NatsStateBackend> => {
    const b = await NatsStateBackend.open(parseClusterOptions({ servers: cluster.urls, hubName, prefix: o.prefix, replicas: 3, ...o.options }), o.log);
    backends.push(b);
    return b;
  };
  try {
    const a = await open('hub-a');
    nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    return {
      cluster, a, nc, jsm, open, close,
      async openWithStore(hubName, name, accept, progress) {
        const b = await open(hubName);
        try { return { b, s: await b.openKeyed(name, { accept, ...(progress ? { progress } : {}) }), close: () => b.close() }; } catch (err) { await b.close(); throw err; }
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Publishes to side keys of BUCKET that race on the stream's last sequence: most are refused when applied. VALUE: the same for every write, or worker W's Ith write's. */
export function racingGuardedWrites(nc: NatsConnection, bucket: string, value: string | ((w: number, i: number) => string) = '{}'): { refused: () => number; stop: () => Promise<void> } {
  const js = jetstream(nc, { timeout: 1000 });
  let last = 0;
  let refused = 0;
  let stopping = false;
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stopping; i++) {
      // Every other publish expects the stream's last sequence (as the guard does); the others are plain.
      const guarded = i % 2 === 0;
      try {
        const pa = await js.publish(`$KV.${bucket}.race-${w}-${i % 40}`, typeof value === 'string' ? value : value(w, i), guarded ? { expect: { lastSequence: last } } : {});
        last = Math.max(last, pa.seq);
      } catch (err) {
        if ((err as { code?: number }).code === 10071) refused++;
        else await sleep(50);
      }
    }
  };
  const ws = Array.from({ length: 6 }, (_, w) => worker(w));
  return { refused: () => refused, stop: async () => { stopping = true; await Promise.all(ws); } };
}

/** Each consumer of STREAM and the server it lives on. */
export async function consumersOn(jsm: JetStreamManager, stream: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const c of await jsm.consumers.list(stream).next()) out.set(c.name, c.cluster?.leader ?? '');
  return out;
}

/**
 * Race guarded writes on BUCKET while a follower of its stream is killed and
 * restarted; returns that follower's index. `follower`: which one, counted
 * from the leader (default 1, the next node).
 */
export async function killFollowerUnderRace(o: { cluster: NatsCluster; nc: NatsConnection; bucket: string; value?: string | ((w: number, i: number) => string); follower?: 1 | 2 }): Promise<{ node: number; refused: number }> {
  const stream = `KV_${o.bucket}`;
  const node = ((await o.cluster.streamLeader(stream)) + (o.follower ?? 1)) % 3;
  const race = racingGuardedWrites(o.nc, o.bucket, o.value);
  await sleep(2000);
  await o.cluster.kill(node);
  await sleep(1500);
  await o.cluster.restart(node);
  await sleep(3000);
  await race.stop();
  return { node, refused: race.refused() };
}

/**
 * Open stores with OPEN until one's watch (a new consumer of STREAM) is on
 * server NAME; the others are closed. Null after `tries` attempts.
 */
export async function placeWatchOn<S extends { close(): Promise<void> }>(o: { jsm: JetStreamManager; stream: string; name: string; tries: number; open: (i: number) => Promise<S> }): Promise<S | null> {
  for (let i = 0; i < o.tries; i++) {
    const before = await consumersOn(o.jsm, o.stream);
    const s = await o.open(i);
    const mine = [...(await consumersOn(o.jsm, o.stream))].find(([c]) => !before.has(c));
    if (mine?.[1] === o.name) return s;
    await s.close();
  }
  return null;
}
