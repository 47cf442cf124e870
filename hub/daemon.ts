// `bento-hub serve`: wires the parts together. Durable state is loaded first,
// then the admin socket, the agent listeners and the web side open. Every
// part that started pushes its close onto one stack; stop() - or a part that
// fails to start - unwinds that stack in reverse, so nothing is left open.
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../common/platform/log.js';
import { SECRETS_SUBSYSTEM } from './secrets/bundle.js';
import { SecretsService } from './secrets/serve.js';
import { fleetPaths } from './fleet/paths.js';
import { loadHubConfig, type HubConfig } from './fleet/hub-config.js';
import { bindListener, listenAddress } from './fleet/host-port.js';
import { JobStore } from './store/jobs.js';
import { HostStateStore } from './store/host-state.js';
import { openHubState } from './store/open.js';
import { openTopology } from './topology.js';
import { SessionRegistry } from './server/sessions.js';
import { AgentServer } from './server/ssh-server.js';
import { followLateQueued } from './jobs/late-queued.js';
import { Scheduler } from './jobs/scheduler.js';
import { AdminServer } from './admin/server.js';
import { makeAdminHandler } from './admin/handlers.js';
import { openForwardChannel } from './admin/proxy.js';
import { BentoError } from '../common/protocol/errors.js';
import { startWsListener, type WsListener } from './server/ws-listener.js';
import { registerAdmissionMetrics } from './metrics/admission-metrics.js';
import { registerLimitsMetrics } from './metrics/limits-metrics.js';
import { DEFAULT_HUB_LIMITS } from './fleet/limits.js';
import { AdoptionLimiter } from './jobs/adopt-limits.js';
import { FINAL_STATES } from './store/jobs.js';
import { followerPolicy } from './events/follower.js';
import { startWeb, type RunningWeb } from './web/server.js';
import { SftpJail } from './sftp/jail.js';
import { DEFAULT_PUBLISH_SETTINGS } from './publish/settings.js';
import { openHubContent } from './cluster/content-hub.js';
import { PublishedCache } from './status/published-cache.js';
import type { ReadSources } from './status/read-model.js';
import { presence } from './presence.js';
import { RolloutStore } from './rollout/store.js';
import { RolloutEngine } from './rollout/engine.js';

export interface StartHubOptions {
  dir: string;
  log: Logger;
  /** Overrides hub.json's listen. */
  listen?: string;
  /** Overrides hub.json's wsListen. */
  wsListen?: string;
}

export interface RunningHub {
  config: HubConfig;
  sshAddress: AddressInfo;
  ws: WsListener | null;
  agentServer: AgentServer;
  /** Dashboard and metrics endpoints (both off unless hub.json enables them). */
  web: RunningWeb;
  stop(): Promise<void>;
}

/** Close functions of the parts started so far, run last-started first. */
class CloseStack {
  private readonly fns: Array<() => Promise<void> | void> = [];
  push(fn: () => Promise<void> | void): void { this.fns.push(fn); }
  async unwind(log: Logger): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        log.error({ err: (err as Error).message }, 'a part of the hub failed to close');
      }
    }
  }
}

export async function startHub(opts: StartHubOptions): Promise<RunningHub> {
  const paths = fleetPaths(opts.dir);
  const config = await loadHubConfig(paths.hubConfig);
  const listenAddr = opts.listen ?? config.listen;
  const listen = listenAddress('listen', listenAddr);
  const wsAddr = opts.wsListen ?? config.wsListen;
  const wsListen = wsAddr ? listenAddress('wsListen', wsAddr) : null;
  const log = opts.log;
  const hostKey = await readFile(paths.hostKey);
  const closing = new CloseStack();
  try {
    // State and events: files and in process, or NATS JetStream with hub.json's `cluster` (store/open.ts).
    const state = await openHubState({ fleetDir: paths.root, cluster: config.cluster ?? null, log });
    closing.push(() => state.close());
    // Content hubs share (registry, builds, published configurations, uploaded logs): files, or the cluster's stores.
    const content = await openHubContent({ fleetDir: paths.root, settings: config.publish ?? DEFAULT_PUBLISH_SETTINGS, backend: state.cluster, log });
    closing.push(() => content.close());
    const registry = content.registry;
    const sessions = new SessionRegistry(config.heartbeatMs, log.child({ component: 'sessions' }));
    // Who holds which host, and how triggers reach it (topology.ts).
    const topology = await openTopology(state, { sessions, cluster: config.cluster, log });
    closing.push(() => topology.close());
    const { holders } = topology;
    const { backend, bus } = state;
    // What peers may cost the hub (hub/fleet/limits.ts, docs/security.md "Limits").
    const limits = config.limits ?? DEFAULT_HUB_LIMITS;
    const store = await JobStore.open(backend, { history: config.jobHistory, limits, log: log.child({ component: 'jobs' }), fence: holders });
    holders.floorEpochs?.((host) => store.openEpoch(host));
    closing.push(() => store.close());
    const hostStates = await HostStateStore.open(backend);
    closing.push(() => hostStates.close());
    const schedulerLog = log.child({ component: 'scheduler' });
    // Jobs recorded on a host's word (ids the hub has no record of): capped per host (jobs/adopt-limits.ts).
    const adoption = new AdoptionLimiter(limits, (id) => { const r = store.get(id); return r !== undefined && !FINAL_STATES.has(r.state); }, schedulerLog);
    closing.push(() => adoption.close());
    const scheduler = new Scheduler({ store, sessions, bus, holders, log: schedulerLog, adoption });
    await scheduler.recover();
    scheduler.startOrphanSweep();
    closing.push(() => scheduler.close());
    closing.push(followLateQueued({
      store, sessions, queuedLate: (host) => scheduler.queuedLate(host),
      onError: (host, err) => log.warn({ host, err: err.message }, 'cannot take up a job another hub queued for a host held here'),
    }));
    // A host another hub took: its session here was closed (REPLACED); its jobs are that hub's now.
    holders.onLost((host) => { void scheduler.handOver(host); });
    holders.onCurrent(() => scheduler.resumePending());
    const router = topology.router({ scheduler, sessions, jobs: store });
    closing.push(() => router.close());
    // Staged rollouts (docs/rollouts.md): their own keyed store, driven by job ends on the bus.
    const rolloutStore = await RolloutStore.open(backend, { driving: topology.driving });
    closing.push(() => rolloutStore.close());
    const rollouts = new RolloutEngine({
      store: rolloutStore, jobs: store, scheduler: { trigger: (t) => router.trigger(t), cancelQueued: (host, id, why) => scheduler.cancelQueued(host, id, why) },
      bus, connected: (host) => holders.holder(host) !== null, driving: topology.driving,
      log: log.child({ component: 'rollout' }),
    });
    await rollouts.start();
    closing.push(() => rollouts.close());
    const sources: ReadSources = {
      registry, holders, jobs: store, facts: hostStates,
      activeJob: (host) => scheduler.activeJob(host),
      published: new PublishedCache(paths.root),
    };

    const sshLog = log.child({ component: 'ssh' });
    // Each host's SFTP jail: its own published config (read-only) and logs/ (create-only).
    const jail = new SftpJail({ fleetDir: paths.root, settings: config.publish ?? DEFAULT_PUBLISH_SETTINGS, log: log.child({ component: 'sftp' }), ...(content.logArchive ? { logArchive: content.logArchive } : {}) });
    closing.push(() => jail.close());
    // One secrets request in flight per host, each read within a few seconds (secrets/serve.ts).
    const secrets = new SecretsService({ fleetDir: paths.root, root: config.secretsDir ?? null, log: log.child({ component: 'secrets' }) });
    const agentServer = new AgentServer({
      hostKey,
      registry,
      log: sshLog,
      services: config.services ?? {},
      limits,
      sessionLimits: limits,
      connLimits: limits,
      hooks: {
        ...presence({ sessions, holders, hostStates, scheduler, bus, log: sshLog }),
        onSftp: (s, accept) => jail.serve(s.name, accept(), s.outbound),
        onSubsystem: (s, name, accept) => {
          if (name !== SECRETS_SUBSYSTEM) return false;
          return secrets.request(s.name, accept);
        },
        heartbeatMs: () => config.heartbeatMs,
        // A cluster: the live hubs' addresses, so an agent can say which ones its config lacks.
        welcomeExtras: () => { const hubs = holders.hubUrls(); return hubs.length > 0 ? { hubs } : {}; },
      },
    });
    // Where hosts came from before this start: credit for their sources' reconnect storm (admission.ts).
    agentServer.admission.recall(Object.keys(registry.snapshot.hosts).flatMap((n) => hostStates.get(n) ?? []));

    // In a cluster, `proxy` reaches hosts other hubs hold, and they reach ours (hub/cluster/proxy-relay.ts).
    const relay = content.startRelay?.({
      holds: (host) => sessions.get(host) !== undefined,
      holderOf: (host) => holders.holder(host)?.hub ?? null,
      openLocal: async (host, port) => {
        const ch = await openForwardChannel(sessions, host, port);
        if (!ch) throw new BentoError('HOST_OFFLINE', `host "${host}" left this hub`);
        return ch;
      },
    });
    const admin = makeAdminHandler({ registry, sessions, holders, scheduler, router, jobs: store, bus, sources, clusterStatus: () => topology.status(), builds: content.builds, rollouts, ...(relay ? { relay } : {}), log });
    // One bound for every follower (admin socket, dashboard streams): hub/events/follower.ts.
    const followers = followerPolicy(limits);
    const adminServer = new AdminServer(paths.adminSocket, admin, log.child({ component: 'admin' }), followers);
    await adminServer.listen(config.adminGroup);
    closing.push(() => adminServer.close());
    const sshAddress = await bindListener('listen', listenAddr, () => agentServer.listen(listen.host, listen.port));
    closing.push(async () => {
      // Tell the other hubs first that this one is going (its heartbeat record goes): they show its hosts offline at once.
      await topology.close();
      // Stop accepting, then cut the live sessions (their jobs are settled by the agents' next hello).
      const done = agentServer.close();
      for (const s of sessions.all()) s.destroySocket();
      await done;
    });
    let ws: WsListener | null = null;
    if (wsListen) {
      const started = await bindListener('wsListen', wsAddr!, () => startWsListener({ ...wsListen, path: config.wsPath, tls: config.tls, agentServer, limits, log: log.child({ component: 'ws' }) }));
      ws = started;
      closing.push(() => started.close());
    }
    const web = await startWeb(config, {
      sources, jobs: store, bus, admin, fleetDir: paths.root, logs: content.logReader, log: log.child({ component: 'web' }), followers,
      rollouts: { active: () => rollouts.active(), onChange: (fn) => rolloutStore.watchAll(fn) },
    });
    closing.push(() => web.close());
    registerAdmissionMetrics(web.metrics.registry, agentServer.admission);
    registerLimitsMetrics(web.metrics.registry, { inbound: agentServer.inbound, outbound: agentServer.outbound, adoption, followers: followers.stats, output: store.outputStats, refusals: agentServer.conns.refusals });
    sessions.startSweep();
    closing.push(() => sessions.stop());
    log.info({ listen: `${sshAddress.address}:${sshAddress.port}`, ws: ws?.endpoint, socket: paths.adminSocket, hosts: Object.keys(registry.snapshot.hosts).length, hub: topology.hubName, cluster: state.cluster !== null }, 'hub serving');

    return {
      config,
      sshAddress,
      ws,
      agentServer,
      web,
      stop: () => closing.unwind(log),
    };
  } catch (err) {
    await closing.unwind(log);
    throw err;
  }
}
