// How CLI commands reach what hubs share: the registry, published
// configurations, build records, uploaded logs. The one place that picks the
// implementation for a command:
//   - no `cluster` section in hub.json: the fleet directory's files, exactly
//     as the embedded single hub always did (the commands work without a
//     running hub: first setup, NixOS activation);
//   - a `cluster` section: the command talks to NATS itself with those
//     settings (servers, credentials, TLS, prefix), again without needing a
//     running hub. NATS unreachable is CLUSTER_UNAVAILABLE and changes nothing.
import { createLogger, type Logger } from '../../common/platform/log.js';
import { loadHubConfig } from '../fleet/hub-config.js';
import { fleetPaths } from '../fleet/paths.js';
import { fileRegistryStore, readRegistry, type RegistryStore } from '../fleet/registry.js';
import { fileBuildRecords } from '../publish/build-records.js';
import { filePublishedStore } from '../publish/published-store.js';
import type { PublishStores } from '../publish/run.js';
import { fileLogReader, type LogReader } from '../publish/logs.js';
import { BentoError } from '../../common/protocol/errors.js';
import { KvBuildRecords } from './builds-kv.js';
import { clusterLogReader, isLogManifest, KvLogArchive, LOG_OBJECTS, LOGS_STORE } from './logs-kv.js';
import { CONFIGS_OBJECTS, isPublishedRecord, KvPublishedStore, PUBLISHED_STORE } from './published-kv.js';
import { sweepObjects, type SweepDeps, type SweepResult } from './content-sweep.js';
import { HASH_RE } from '../publish/layout.js';
import { LOG_NAME_RE } from '../sftp/vpath.js';
import { NatsStateBackend } from './nats-backend.js';
import type { ResolvedClusterOptions } from './options.js';
import { KvRegistry } from './registry-kv.js';

/** The CLI's logger: warnings and errors on stderr (a lost NATS server, a retried write). */
export function cliLogger(): Logger {
  return createLogger({ name: 'bento-hub', level: process.env['BENTO_LOG_LEVEL'] ?? 'warn' });
}

/** hub.json's cluster settings, or null for the embedded single hub. */
export async function clusterSettings(fleetDir: string): Promise<ResolvedClusterOptions | null> {
  return (await loadHubConfig(fleetPaths(fleetDir).hubConfig)).cluster ?? null;
}

/** Run FN with a connection to the fleet's NATS (CLUSTER_UNAVAILABLE when none answers); closed afterwards. */
export async function withCluster<T>(o: ResolvedClusterOptions, log: Logger, fn: (b: NatsStateBackend) => Promise<T>): Promise<T> {
  const backend = await NatsStateBackend.open(o, log);
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}

/** The registry the CLI edits: registry.json, or the cluster's registry bucket. Close it when done. */
export async function openRegistryStore(fleetDir: string, log: Logger = cliLogger()): Promise<RegistryStore> {
  const p = fleetPaths(fleetDir);
  const cluster = await clusterSettings(fleetDir);
  if (!cluster) return fileRegistryStore(p.registry, p.registryLock);
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

/** Run FN on the fleet's registry store, closed afterwards. */
export async function withRegistry<T>(fleetDir: string, fn: (r: RegistryStore) => Promise<T>): Promise<T> {
  const store = await openRegistryStore(fleetDir);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Where build and deploy read the registry and keep builds and published versions; closed after FN. */
export async function withPublishStores<T>(fleetDir: string, fn: (s: PublishStores) => Promise<T>): Promise<T> {
  const p = fleetPaths(fleetDir);
  const cluster = await clusterSettings(fleetDir);
  if (!cluster) {
    return fn({ registry: await readRegistry(p.registry), builds: fileBuildRecords(p.root), published: filePublishedStore(p.root) });
  }
  const log = cliLogger();
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

/**
 * Where `bento-hub logs` reads: the jails' logs/ directories, or in a cluster
 * the shared archive plus this hub's jail. With NATS unreachable it falls back
 * to this hub's jail and says so (onFallback), rather than showing nothing.
 */
export async function withLogReader<T>(fleetDir: string, fn: (r: LogReader, registered: (host: string) => Promise<boolean>) => Promise<T>, onFallback: (why: string) => void): Promise<T> {
  const p = fleetPaths(fleetDir);
  const cluster = await clusterSettings(fleetDir);
  if (!cluster) return fn(fileLogReader(p.root), async (h) => Object.prototype.hasOwnProperty.call((await readRegistry(p.registry)).hosts, h));
  const log = cliLogger();
  let backend: NatsStateBackend;
  try {
    backend = await NatsStateBackend.open(cluster, log);
  } catch (err) {
    if (!(err instanceof BentoError && err.code === 'CLUSTER_UNAVAILABLE')) throw err;
    onFallback(`${err.message}; showing only the logs held at this hub`);
    // The registry is out of reach too: never call a host unknown on that basis.
    return fn(fileLogReader(p.root), async () => true);
  }
  try {
    const archive = await KvLogArchive.open(backend, { log });
    const reg = await KvRegistry.open(backend, { log });
    try {
      return await fn(clusterLogReader(p.root, archive), async (h) => Object.prototype.hasOwnProperty.call(reg.snapshot.hosts, h));
    } finally {
      await reg.close();
    }
  } finally {
    await backend.close();
  }
}

/** What `bento-hub cluster sweep` found in each object store. */
export interface ContentSweep { configs: SweepResult; logs: SweepResult }

/**
 * `bento-hub cluster sweep`: remove the configuration trees and uploaded logs
 * no record keeps (content-sweep.ts). Null for the embedded single hub (it
 * keeps both as files, and drops them itself).
 */
export async function sweepContent(fleetDir: string, o: { minAgeMs: number; dryRun: boolean }): Promise<ContentSweep | null> {
  const cluster = await clusterSettings(fleetDir);
  if (!cluster) return null;
  const log = cliLogger();
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
    return { configs, logs };
  });
}
