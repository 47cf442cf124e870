// What a running hub reads and serves of the content hubs share: the
// registry agents authenticate against, build records for --prebuilt, the
// published configurations its jail serves, the archive its jail moves
// uploaded logs into. The one place the hub picks the implementation:
//   - no cluster backend: the fleet directory's files, today's single hub;
//   - a NATS backend: the shared stores, with this hub's mirror of the
//     published configurations running until close().
import type { Logger } from '../../common/platform/log.js';
import { fleetPaths } from '../fleet/paths.js';
import { FileRegistryView, type RegistryView } from '../fleet/registry.js';
import { fileBuildRecords, type BuildRecords } from '../publish/build-records.js';
import { fileLogReader, type LogReader } from '../publish/logs.js';
import type { PublishSettings } from '../publish/settings.js';
import type { LogArchive } from '../sftp/log-archive.js';
import { KvBuildRecords } from './builds-kv.js';
import { clusterLogReader, KvLogArchive } from './logs-kv.js';
import type { NatsStateBackend } from './nats-backend.js';
import { KvPublishedStore } from './published-kv.js';
import { PublishedMirror } from './published-mirror.js';
import { KvRegistry } from './registry-kv.js';
import { adoptPublished, adoptRegistry } from './content-adopt.js';
import { ProxyRelay, type ProxyRelayOptions } from './proxy-relay.js';

export interface HubContent {
  registry: RegistryView;
  builds: Pick<BuildRecords, 'read'>;
  /** Only in a cluster: where the jail moves finished log uploads. */
  logArchive?: LogArchive;
  /**
   * Where the dashboard reads uploaded logs, as `bento-hub logs` does: the
   * jails, or in a cluster the archive too (a shipped log leaves the jail).
   */
  logReader: LogReader;
  /**
   * Only in a cluster: answer other hubs' proxy requests for the hosts this
   * hub holds, and reach hosts other hubs hold (started once the sessions
   * exist; stopped by close()).
   */
  startRelay?(local: Pick<ProxyRelayOptions, 'holds' | 'openLocal' | 'holderOf'>): ProxyRelay;
  close(): Promise<void>;
}

export interface HubContentOptions {
  fleetDir: string;
  settings: PublishSettings;
  /** The hub's cluster connection, or null for the embedded single hub. */
  backend: NatsStateBackend | null;
  log: Logger;
}

export async function openHubContent(o: HubContentOptions): Promise<HubContent> {
  const paths = fleetPaths(o.fleetDir);
  if (!o.backend) {
    const registry = new FileRegistryView(paths.registry);
    await registry.refresh();
    return { registry, builds: fileBuildRecords(paths.root), logReader: fileLogReader(paths.root), close: async () => undefined };
  }
  const b = o.backend;
  const closers: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch((err: unknown) => o.log.error({ err: (err as Error).message }, 'closing shared content failed'));
  };
  try {
    const registry = await KvRegistry.open(b, { log: o.log.child({ component: 'registry' }) });
    closers.push(() => registry.close());
    // A hub that served alone before: its hosts must not be locked out of a new cluster; seeded once per cluster (content-adopt.ts).
    await adoptRegistry({ fleetDir: paths.root, registry, log: o.log.child({ component: 'registry' }), hubName: b.hubName });
    const builds = await KvBuildRecords.open(b, { fleetDir: paths.root, hubName: b.hubName });
    closers.push(() => builds.close());
    const published = await KvPublishedStore.open(b, { fleetDir: paths.root, log: o.log.child({ component: 'published' }) });
    closers.push(() => published.close());
    const mirror = new PublishedMirror({
      records: published.records, objects: published.objects, fleetDir: paths.root,
      keepVersions: o.settings.keepVersions, log: o.log.child({ component: 'mirror' }),
    });
    const adopting = adoptPublished({ fleetDir: paths.root, published, log: o.log.child({ component: 'published' }) })
      .catch((err: unknown) => { o.log.warn({ err: (err as Error).message }, 'offering this hub\'s published configurations to the cluster failed'); });
    closers.push(() => adopting.then(() => undefined));
    mirror.start();
    closers.push(() => mirror.close());
    const logsLog = o.log.child({ component: 'logs' });
    const logArchive = await KvLogArchive.open(b, { log: logsLog });
    const logReader = clusterLogReader(paths.root, logArchive, (err) => logsLog.warn({ err: err.message }, 'cannot read the cluster\'s log archive; the dashboard shows the logs held at this hub'));
    const startRelay = (local: Pick<ProxyRelayOptions, 'holds' | 'openLocal' | 'holderOf'>): ProxyRelay => {
      const relay = new ProxyRelay({ nc: b.nc, prefix: b.names.prefix, hubName: b.hubName, log: o.log.child({ component: 'relay' }), ...local });
      relay.start();
      closers.push(() => relay.close());
      return relay;
    };
    return { registry, builds, logArchive, logReader, startRelay, close };
  } catch (err) {
    await close();
    throw err;
  }
}
