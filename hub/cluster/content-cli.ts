// How CLI commands reach what hubs share: the registry, published
// configurations, build records, uploaded logs. The one place that picks the
// implementation for a command:
//   - no `cluster` section in hub.json: the fleet directory's files, exactly
//     as the embedded single hub always did (the commands work without a
//     running hub: first setup, NixOS activation);
//   - a `cluster` section: the command talks to NATS itself with those
//     settings (servers, credentials, TLS, prefix), again without needing a
//     running hub. NATS unreachable is CLUSTER_UNAVAILABLE and changes nothing.
// The cluster side (content-cli-nats.ts) is loaded only then: every CLI
// command imports this file, and the NATS client costs a call ~0.3 s of CPU.
import { createLogger, type Logger } from '../../common/platform/log.js';
import { loadHubConfig } from '../fleet/hub-config.js';
import { fleetPaths } from '../fleet/paths.js';
import { fileRegistryStore, readRegistry, type RegistryStore } from '../fleet/registry.js';
import { fileBuildRecords } from '../publish/build-records.js';
import { filePublishedStore } from '../publish/published-store.js';
import type { PublishStores } from '../publish/run.js';
import { fileLogReader, type LogReader } from '../publish/logs.js';
import type { ResolvedClusterOptions } from './options.js';
import type { ContentSweep } from './content-cli-nats.js';

export type { ContentSweep } from './content-cli-nats.js';

const natsSide = (): Promise<typeof import('./content-cli-nats.js')> => import('./content-cli-nats.js');

/** The CLI's logger: warnings and errors on stderr (a lost NATS server, a retried write). */
export function cliLogger(): Logger {
  return createLogger({ name: 'bento-hub', level: process.env['BENTO_LOG_LEVEL'] ?? 'warn' });
}

/** hub.json's cluster settings, or null for the embedded single hub. */
export async function clusterSettings(fleetDir: string): Promise<ResolvedClusterOptions | null> {
  return (await loadHubConfig(fleetPaths(fleetDir).hubConfig)).cluster ?? null;
}

/** The registry the CLI edits: registry.json, or the cluster's registry bucket. Close it when done. */
export async function openRegistryStore(fleetDir: string, log: Logger = cliLogger()): Promise<RegistryStore> {
  const p = fleetPaths(fleetDir);
  const cluster = await clusterSettings(fleetDir);
  if (!cluster) return fileRegistryStore(p.registry, p.registryLock);
  return (await natsSide()).openClusterRegistry(cluster, log);
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
  return (await natsSide()).withClusterPublishStores(fleetDir, cluster, cliLogger(), fn);
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
  return (await natsSide()).withClusterLogReader(fleetDir, cluster, cliLogger(), fn, (err) => {
    onFallback(`${err.message}; showing only the logs held at this hub`);
    // The registry is out of reach too: never call a host unknown on that basis.
    return fn(fileLogReader(p.root), async () => true);
  });
}

/**
 * `bento-hub cluster sweep`: remove the configuration trees and uploaded logs
 * no record keeps (content-sweep.ts), and purge old deletion markers from the
 * keyed stores' buckets (marker-sweep.ts). Null for the embedded single hub
 * (it keeps all of them as files, and drops old ones itself).
 */
export async function sweepContent(fleetDir: string, o: { minAgeMs: number; dryRun: boolean }): Promise<ContentSweep | null> {
  const cluster = await clusterSettings(fleetDir);
  if (!cluster) return null;
  return (await natsSide()).sweepCluster(fleetDir, cluster, cliLogger(), o);
}
