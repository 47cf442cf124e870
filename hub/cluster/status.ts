// `bento-hub cluster status`: the hubs (from their heartbeats), how many
// agents each holds, the NATS server this hub talks to, and JetStream's
// health: the account's usage and, per stream of this fleet (its buckets and
// the output stream), which server leads it and how each replica keeps up.
// All through the hub's own client connection (JetStream API requests), so no
// HTTP monitoring port and no system account are needed.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ClusterHub, ClusterStatus } from '../../common/protocol/admin.js';
import type { ClusterHolders } from './holds.js';
import type { ClusterNames } from './names.js';

export interface StatusDeps {
  nc: NatsConnection;
  jsm: JetStreamManager;
  names: ClusterNames;
  holders: ClusterHolders;
  /** The stores this hub opened (their buckets are streams KV_<bucket>). */
  stores: string[];
}

export async function clusterStatus(d: StatusDeps): Promise<ClusterStatus> {
  const agents = new Map<string, number>();
  for (const h of d.holders.all()) agents.set(h.hub, (agents.get(h.hub) ?? 0) + 1);
  const hubs: ClusterHub[] = d.holders.hubs().map((h) => ({ ...h, agents: agents.get(h.name) ?? 0 }));
  const info = d.nc.info;
  let jetstream: NonNullable<ClusterStatus['nats']>['jetstream'];
  try {
    const a = await d.jsm.getAccountInfo();
    jetstream = { ok: true, error: null, streams: a.streams, storageBytes: a.storage, memoryBytes: a.memory, apiErrors: a.api.errors };
  } catch (err) {
    jetstream = { ok: false, error: (err as Error).message, streams: 0, storageBytes: 0, memoryBytes: 0, apiErrors: 0 };
  }
  const names = [...d.stores.map((s) => `KV_${d.names.bucket(s)}`), d.names.outputStream];
  const streams = await Promise.all(names.map(async (name) => {
    try {
      const si = await d.jsm.streams.info(name);
      const c = si.cluster;
      const replicas = [
        ...(c?.leader ? [{ server: c.leader, leader: true, current: true, offline: false, lagMessages: 0, activeMs: 0 }] : []),
        ...(c?.replicas ?? []).map((r) => ({
          server: r.name, leader: false, current: r.current, offline: r.offline ?? false, lagMessages: r.lag ?? 0,
          activeMs: typeof r.active === 'number' ? Math.round(r.active / 1e6) : null,
        })),
      ];
      return { name, messages: si.state.messages, bytes: si.state.bytes, replicas, leader: c?.leader ?? null, error: null };
    } catch (err) {
      return { name, messages: 0, bytes: 0, replicas: [], leader: null, error: (err as Error).message };
    }
  }));
  return {
    hub: d.holders.hubName,
    clustered: true,
    hubs,
    nats: {
      connectedTo: { name: info?.server_name ?? '?', version: info?.version ?? '?', cluster: info?.cluster ?? null, url: d.nc.getServer() },
      knownServers: info?.connect_urls ?? [],
      connected: !d.nc.isClosed() && info !== undefined,
      jetstream,
      streams,
    },
  };
}
