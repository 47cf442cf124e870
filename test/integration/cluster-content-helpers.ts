// Shared setup of the cluster-content tests: "hubs" on one real 3-node
// JetStream cluster (each its own connection, as each hub has), every case
// under its own prefix so cases never see each other's buckets, and fleet
// directories whose hub.json carries a `cluster` section, for the CLI.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { silentLogger } from '../../common/platform/log.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import type { NatsCluster } from '../fixtures/nats.js';
import { TestFleet, type FleetOptions } from '../helpers/fleet.js';

let cases = 0;

/** A prefix no other case of this process uses. */
export function freshPrefix(tag: string): string {
  return `${tag}${++cases}-${process.pid}`;
}

/** The `cluster` section of hub.json for hub NAME (servers listed from its "own" one, as a spread-out deployment would). */
export function clusterSection(nats: NatsCluster, prefix: string, hubName: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const i = Number(hubName.replace(/\D/g, '') || '0') % nats.urls.length;
  // A small output stream: its size is reserved on each server, and the test servers allow 1 GB each.
  return { servers: [nats.urls[i]!, ...nats.urls.filter((_, j) => j !== i)], hubName, prefix, replicas: 3, outputMaxBytes: 16 * 1024 * 1024, ...extra };
}

/** One hub's connection to the cluster. */
export function openBackend(nats: NatsCluster, prefix: string, hubName: string): Promise<NatsStateBackend> {
  return NatsStateBackend.open(parseClusterOptions(clusterSection(nats, prefix, hubName)), silentLogger());
}

/** Delete every stream of one prefix (buckets and object stores are streams), so the shared cluster stays small. */
export async function dropPrefix(nats: NatsCluster, prefix: string): Promise<void> {
  const nc = await connect({ servers: nats.urls, timeout: 5000 });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`KV_${prefix}_`) || name.startsWith(`OBJ_${prefix}_`) || name.startsWith(`${prefix}_`)) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
}

/** A fleet directory (bento-hub init) whose hub.json joins the cluster as HUBNAME. */
export async function clusterFleet(nats: NatsCluster, prefix: string, hubName: string, opts: FleetOptions & { cluster?: Record<string, unknown> } = {}): Promise<TestFleet> {
  const fleet = await TestFleet.create(opts);
  const hubJson = path.join(fleet.fleetDir, 'hub.json');
  const settings = JSON.parse(await readFile(hubJson, 'utf8')) as Record<string, unknown>;
  settings['cluster'] = opts.cluster ?? clusterSection(nats, prefix, hubName);
  await writeFile(hubJson, JSON.stringify(settings));
  return fleet;
}

/** A real pino logger whose lines the test can read (at info). */
/** The hosts of the registry as `bento-hub hosts --json` at F lists them, by name. */
export async function hostsAt(f: TestFleet): Promise<string[]> {
  const r = await f.hubCli(['hosts', '--json']);
  if (r.code !== 0) throw new Error(`hosts at ${f.fleetDir}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { hosts: Array<{ name: string }> }).hosts.map((h) => h.name).sort();
}

export { captureLog } from '../helpers/log-capture.js';
