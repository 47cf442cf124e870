// The cluster side of the CLI's access to shared content (content-cli.ts):
// the registry bucket, build and published records, the log archive and the
// sweep, each over its own NATS connection made with hub.json's cluster
// settings. Loaded by content-cli.ts only when hub.json has a `cluster`
// section: the NATS client and the cluster stores cost every CLI call about
// 0.3 s of CPU to load (measured: `bento-hub list` 0.65 CPU s with them, 0.15
// without), and most commands and fleets never need them.
import type { Logger } from '../../common/platform/log.js';
import { fleetPaths } from '../fleet/paths.js';
import type { RegistryStore } from '../fleet/registry.js';
import type { PublishStores } from '../publish/run.js';
import type { LogReader } from '../publish/logs.js';
import { BentoError } from '../../common/protocol/errors.js';
import { KvBuildRecords } from './builds-kv.js';
import { clusterLogReader, isLogManifest, KvLogArchive, LOG_OBJECTS, LOGS_STORE } from './logs-kv.js';
import { CONFIGS_OBJECTS, isPublishedRecord, KvPublishedStore, PUBLISHED_STORE } from './published-kv.js';
import { sweepObjects, type SweepDeps, type SweepResult } from './content-sweep.js';
import { KEYED_STORES, sweepMarkers, type MarkerCounts } from './marker-sweep.js';
import { HASH_RE } from '../publish/layout.js';
import { LOG_NAME_RE } from '../sftp/vpath.js';
import { NatsStateBackend } from './nats-backend.js';
import type { ResolvedClusterOptions } from './options.js';
import { KvRegistry } from './registry-kv.js';

/** Run FN with a connection to the fleet's NATS (CLUSTER_UNAVAILABLE when none answers); closed afterwards. */
export async function withCluster<T>(o: ResolvedClusterOptions, log: Logger, fn: (b: NatsStateBackend) => Promise<T>): Promise<T> {
  const backend = await NatsStateBackend.open(o, log);
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}

/** The cluster's registry bucket as the CLI's registry store. Close it when done. */
export async function openClusterRegistry(cluster: ResolvedClusterOptions, log: Logger): Promise<RegistryStore> {
  const backend = await NatsStateBackend.open(cluster, log);
  try {
    const reg = await KvRegistry.open(backend, { log: log.child({ component: 'registry' }) });
    return {
      read: () => reg.read(),
      update: (fn) => reg.update(fn),
      close: async () => {
        await reg.close();
        await backend.close();
      },
    };
  } catch (err) {
    await backend.close();
    throw err;
  }
}

/** Build and deploy's stores in a cluster; closed after FN. */
export function withClusterPublishStores<T>(fleetDir: string, cluster: ResolvedClusterOptions, log: Logger, fn: (s: PublishStores) => Promise<T>): Promise<T> {
  const p = fleetPaths(fleetDir);
  return withCluster(cluster, log, async (backend) => {
    const reg = await KvRegistry.open(backend, { log });
    const builds = await KvBuildRecords.open(backend, { fleetDir: p.root, hubName: backend.hubName });
    const published = await KvPublishedStore.open(backend, { fleetDir: p.root, log });
    try {
      return await fn({ registry: await reg.read(), builds, published });
    } finally {
      await Promise.allSettled([reg.close(), builds.close(), published.close()]);
    }
  });
}

/** `bento-hub logs` in a cluster (content-cli.ts withLogReader); FALLBACK: NATS does not answer. */
export async function withClusterLogReader<T>(
  fleetDir: string, cluster: ResolvedClusterOptions, log: Logger,
  fn: (r: LogReader, registered: (host: string) => Promise<boolean>) => Promise<T>,
  fallback: (err: BentoError) => Promise<T>,
): Promise<T> {
  let backend: NatsStateBackend;
  try {
    backend = await NatsStateBackend.open(cluster, log);
  } catch (err) {
    if (!(err instanceof BentoError && err.code === 'CLUSTER_UNAVAILABLE')) throw err;
    return fallback(err);
  }
  try {
    const archive = await KvLogArchive.open(backend, { log });
    const reg = await KvRegistry.open(backend, { log });
    try {
      return await fn(clusterLogReader(fleetPaths(fleetDir).root, archive), async (h) => Object.prototype.hasOwnProperty.call(reg.snapshot.hosts, h));
    } finally {
      await reg.close();
    }
  } finally {
    await backend.close();
  }
}

/** What `bento-hub cluster sweep` found in each object store, and of the deletion markers in each keyed store's bucket that exists. */
export interface ContentSweep { configs: SweepResult; logs: SweepResult; markers: Record<string, MarkerCounts> }

/** `bento-hub cluster sweep` (content-cli.ts sweepContent), in the cluster CLUSTER. */
export function sweepCluster(fleetDir: string, cluster: ResolvedClusterOptions, log: Logger, o: { minAgeMs: number; dryRun: boolean }): Promise<ContentSweep> {
  return withCluster(cluster, log, async (backend) => {
    // The leader's record of HOST in STORE, if this version reads it; a record it cannot read (a newer hub's?) may keep anything.
    const leader = async <T>(store: string, host: string, accept: (k: string, v: unknown) => v is T): Promise<T | null> => {
      const v = await backend.leaderValue(store, host);
      if (v === null) return null;
      if (!accept(host, v)) throw new Error(`${host}'s record in ${store} is not one this version of Bento reads; left alone`);
      return v;
    };
    const common = { minAgeMs: o.minAgeMs, dryRun: o.dryRun };
    const objects = (name: string): SweepDeps['objects'] => {
      const versions = backend.objectVersions(name);
      return { scan: () => backend.scanObjects(name), deleteScanned: (m) => versions.deleteScanned(m) };
    };
    const published = await KvPublishedStore.open(backend, { fleetDir: fleetPaths(fleetDir).root, log });
    let configs: SweepResult;
    try {
      configs = await sweepObjects({
        ...common, objects: objects(CONFIGS_OBJECTS), isItem: (h) => HASH_RE.test(h),
        keptInView: (host, hash) => published.records.get(host)?.kept.includes(hash) ?? false,
        keptAtLeader: async (host) => { const r = await leader(PUBLISHED_STORE, host, isPublishedRecord); return r && new Set(r.kept); },
      });
    } finally {
      await published.close();
    }
    // Log manifests are read by key on demand (logs-kv.ts): no view, every candidate is checked at the leader.
    await backend.openObjectStore(LOG_OBJECTS); // created if missing: the scan reads its stream
    const logs = await sweepObjects({
      ...common, objects: objects(LOG_OBJECTS), isItem: (n) => LOG_NAME_RE.test(n), keptInView: () => false,
      keptAtLeader: async (host) => { const m = await leader(LOGS_STORE, host, isLogManifest); return m && new Set(Object.keys(m.logs)); },
    });
    // Then the keyed stores' old deletion markers (marker-sweep.ts), one bucket after the other.
    const markers: Record<string, MarkerCounts> = {};
    for (const store of KEYED_STORES) {
      const bucket = await backend.kvMarkers(store);
      if (bucket) markers[store] = await sweepMarkers({ ...common, ...bucket });
    }
    return { configs, logs, markers };
  });
}
