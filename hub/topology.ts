// What follows from the backend chosen in store/open.ts: who holds which host
// (hub/holders) and how a trigger reaches it (hub/jobs/router.ts). One hub:
// the holders are its own sessions and triggers go to its own scheduler. A
// cluster: ownership records in the "holds" bucket with the hubs' heartbeats,
// and triggers routed over NATS request/reply. Built here, once, at start;
// the rest of the hub sees only the interfaces.
import { randomUUID } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '../common/platform/log.js';
import type { ClusterStatus } from '../common/protocol/admin.js';
import type { HostHolders } from './holders/types.js';
import { LocalHolders } from './holders/local.js';
import type { SessionRegistry } from './server/sessions.js';
import type { Scheduler } from './jobs/scheduler.js';
import { LocalRouter, type TriggerRouter } from './jobs/router.js';
import type { HubState } from './store/open.js';
import type { ResolvedClusterOptions } from './cluster/options.js';
import { ClusterHolders } from './cluster/holds.js';
import { HOLD_PROGRESS, isHoldEntry, type HoldEntry } from './cluster/hold-records.js';
import { livenessTiming } from './cluster/liveness.js';
import { ClusterRouter } from './cluster/routing.js';
import { clusterStatus } from './cluster/status.js';
import { localDriving, type RolloutDriving } from './rollout/driver.js';
import { HOSTS_STORE } from './store/host-state.js';
import { JOBS_STORE, type JobStore } from './store/jobs.js';

/** The bucket of host ownership records and hub heartbeats. */
export const HOLDS_STORE = 'holds';

export interface Topology {
  readonly hubName: string;
  readonly holders: HostHolders;
  /** Which hub drives which rollout (hub/rollout/driver.ts). */
  readonly driving: RolloutDriving;
  /** The trigger router over this hub's scheduler. */
  router(d: { scheduler: Pick<Scheduler, 'trigger'>; sessions: { get(host: string): unknown }; jobs: Pick<JobStore, 'get'> }): TriggerRouter;
  /** `bento-hub cluster status`. */
  status(): Promise<ClusterStatus>;
  close(): Promise<void>;
}

export async function openTopology(state: HubState, o: { sessions: SessionRegistry; cluster?: ResolvedClusterOptions; log: Logger }): Promise<Topology> {
  const nats = state.cluster;
  if (!nats || !o.cluster) {
    const holders = new LocalHolders(o.sessions);
    return {
      hubName: holders.hubName,
      holders,
      driving: localDriving(holders.hubName),
      router: (d) => new LocalRouter({ ...d, hubName: holders.hubName }),
      status: async () => ({ hub: holders.hubName, clustered: false, hubs: [], nats: null }),
      close: () => holders.close(),
    };
  }
  const opts = o.cluster;
  const log = o.log.child({ component: 'holds' });
  const store = await state.backend.openKeyed<HoldEntry>(HOLDS_STORE, { accept: isHoldEntry, priority: true, progress: HOLD_PROGRESS });
  const run = randomUUID();
  const holders = new ClusterHolders({ store, hubName: opts.hubName, run, sessions: o.sessions, timing: livenessTiming(opts.livenessMs), log, ...(opts.agentUrl ? { agentUrl: opts.agentUrl } : {}) });
  try {
    await holders.start();
  } catch (err) {
    await holders.close();
    await store.close();
    throw err;
  }
  let jsm: Promise<JetStreamManager> | null = null;
  let closed = false;
  // The same run and liveness as the holds: a rollout's driver is alive exactly while its hub's heartbeat is.
  const driving: RolloutDriving = {
    hub: opts.hubName,
    run,
    mayAct: () => holders.liveness.current,
    alive: (d) => holders.liveness.alive(d.hub, d.run),
    successor: () => holders.settlesOrphans(),
  };
  return {
    hubName: opts.hubName,
    holders,
    driving,
    router: (d) => {
      const r = new ClusterRouter({
        nc: nats.nc, names: nats.names, hubName: opts.hubName, holders, timeoutMs: opts.routeTimeoutMs,
        jobs: d.jobs, current: () => holders.liveness.current,
        local: new LocalRouter({ ...d, hubName: opts.hubName }), log: o.log.child({ component: 'routing' }),
      });
      r.start();
      return r;
    },
    status: async () => {
      jsm ??= jetstreamManager(nats.nc, { timeout: opts.requestTimeoutMs, checkAPI: false });
      return clusterStatus({ nc: nats.nc, jsm: await jsm, names: nats.names, holders, stores: [JOBS_STORE, HOSTS_STORE, HOLDS_STORE] });
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await holders.close();
      await store.close();
    },
  };
}
