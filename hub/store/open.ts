// Which backends a fleet's hub uses: the one place they are chosen. Without a
// `cluster` section in hub.json, state lives in files under FLEET/state and
// events stay in process (the single hub). With one, every hub of the
// cluster keeps its state in NATS JetStream and shares one event bus on NATS
// subjects (hub/cluster/). What follows from that choice (who holds which
// host, how a trigger reaches it) is built from the result in
// hub/topology.ts; nothing else in the hub asks which one it got.
import type { Logger } from '../../common/platform/log.js';
import { fleetPaths } from '../fleet/paths.js';
import { LocalEventBus } from '../events/bus.js';
import type { EventBus } from '../events/types.js';
import { NatsStateBackend } from '../cluster/nats-backend.js';
import type { ResolvedClusterOptions } from '../cluster/options.js';
import { openFileBackend } from './file-backend.js';
import type { StateBackend } from './types.js';

export interface HubState {
  backend: StateBackend;
  bus: EventBus;
  /** The NATS backend when this hub is one of a cluster (its connection carries routing too); null for one hub. */
  cluster: NatsStateBackend | null;
  close(): Promise<void>;
}

/** The serving hub's state and event bus (read-write). Rejects with CLUSTER_UNAVAILABLE when NATS cannot be reached. */
export async function openHubState(o: { fleetDir: string; cluster?: ResolvedClusterOptions | null; log: Logger }): Promise<HubState> {
  if (o.cluster) {
    const nats = await NatsStateBackend.open(o.cluster, o.log.child({ component: 'cluster' }));
    return { backend: nats, bus: nats.eventBus(), cluster: nats, close: () => nats.close() };
  }
  const backend = openFileBackend({ stateDir: fleetPaths(o.fleetDir).stateDir, log: o.log.child({ component: 'state' }) });
  const bus = new LocalEventBus(o.log.child({ component: 'events' }));
  return { backend, bus, cluster: null, close: async () => { await bus.close(); await backend.close(); } };
}

/** The hub's own state files (read-write), for tools that run without a cluster. */
export function openFleetState(fleetDir: string, log: Logger): StateBackend {
  return openFileBackend({ stateDir: fleetPaths(fleetDir).stateDir, log });
}

/** The same state, read-only, for offline tools (`bento-hub diff`) and tests: what the hub would load. */
export function readFleetState(fleetDir: string): StateBackend {
  return openFileBackend({ stateDir: fleetPaths(fleetDir).stateDir, readOnly: true });
}
