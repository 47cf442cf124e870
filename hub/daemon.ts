// `bento-hub serve`: wires the parts together. Durable state is loaded first,
// then the agent listener and the admin socket open; stop() closes them in
// the reverse order and flushes job logs.
import { SECRETS_SUBSYSTEM } from './secrets/bundle.js';
import { serveSecrets } from './secrets/serve.js';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../common/platform/log.js';
import { asBentoError } from '../common/protocol/errors.js';
import { fleetPaths } from './fleet/paths.js';
import { loadHubConfig, parseHostPort, type HubConfig } from './fleet/hub-config.js';
import { RegistryView } from './fleet/registry.js';
import { JobStore } from './store/jobs.js';
import { HostStateStore } from './store/host-state.js';
import { SessionRegistry } from './server/sessions.js';
import { AgentServer } from './server/ssh-server.js';
import { Scheduler } from './jobs/scheduler.js';
import { JobWatchers } from './jobs/watchers.js';
import { AdminServer } from './admin/server.js';
import { makeAdminHandler, type HubParts } from './admin/handlers.js';
import type { LiveSession } from './server/live-session.js';
import { startWsListener, type WsListener } from './server/ws-listener.js';
import { HubFeed } from './metrics/feed.js';
import { registerAdmissionMetrics } from './metrics/admission-metrics.js';
import { startWeb, type RunningWeb } from './web/server.js';
import { SftpJail } from './sftp/jail.js';
import { DEFAULT_PUBLISH_SETTINGS } from './publish/settings.js';
import { logReboot, rebootReport } from './status/reboot-report.js';

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
  parts: HubParts;
  agentServer: AgentServer;
  /** Dashboard and metrics endpoints (both off unless hub.json enables them). */
  web: RunningWeb;
  stop(): Promise<void>;
}

export async function startHub(opts: StartHubOptions): Promise<RunningHub> {
  const paths = fleetPaths(opts.dir);
  const config = await loadHubConfig(paths.hubConfig);
  const listen = parseHostPort(opts.listen ?? config.listen);
  if (!listen) throw new Error(`invalid listen address ${opts.listen}`);
  const log = opts.log;
  const hostKey = await readFile(paths.hostKey);

  const registry = new RegistryView(paths.registry);
  await registry.refresh();
  const store = new JobStore(paths.jobsDir, config.jobHistory, log.child({ component: 'jobs' }));
  await store.load();
  const hostStates = new HostStateStore(paths.hostStateDir, log.child({ component: 'host-state' }));
  await hostStates.load();
  const sessions = new SessionRegistry(config.heartbeatMs, log.child({ component: 'sessions' }));
  const watchers = new JobWatchers();
  // Connections and job events for the metrics and the dashboard.
  const feed = new HubFeed(log.child({ component: 'web' }), watchers);
  const scheduler = new Scheduler({ store, sessions, watchers, log: log.child({ component: 'scheduler' }) });
  await scheduler.recover();

  const sshLog = log.child({ component: 'ssh' });
  const guard = (what: string) => (err: unknown) => sshLog.error({ err: asBentoError(err).message }, `${what} failed`);
  // Each host's SFTP jail: its own published config (read-only) and logs/ (create-only).
  const jail = new SftpJail({ fleetDir: paths.root, settings: config.publish ?? DEFAULT_PUBLISH_SETTINGS, log: log.child({ component: 'sftp' }) });
  const agentServer = new AgentServer({
    hostKey,
    registry,
    log: sshLog,
    services: config.services ?? {},
    limits: config.limits,
    hooks: {
      onSftp: (s, accept) => jail.serve(s.name, accept()),
      onSubsystem: (s, name, accept) => {
        if (name !== SECRETS_SUBSYSTEM) return false;
        void serveSecrets(s.name, accept(), { fleetDir: paths.root, root: config.secretsDir ?? null, log: log.child({ component: 'secrets' }) });
        return true;
      },
      heartbeatMs: () => config.heartbeatMs,
      onHello(s, hello) {
        sessions.add(s);
        feed.connected(s, hostStates.get(s.name)?.lastConnectedAt != null);
        sshLog.info({ host: s.name, remote: s.origin.remoteAddress, carrier: s.origin.carrier, via: hello.via, agent: hello.agentVersion }, 'agent connected');
        const now = new Date().toISOString();
        // Back after a reboot it asked for (kernel change): logged and kept for `status`.
        const reboot = rebootReport(hello);
        if (reboot) logReboot(sshLog, s.name, reboot);
        hostStates.update(s.name, {
          ...(reboot ? { lastReboot: reboot } : {}),
          lastConnectedAt: now, lastSeenAt: now, agentVersion: hello.agentVersion, system: hello.system,
          generation: hello.generation, configHash: hello.configHash, carrier: s.origin.carrier, remoteAddress: s.origin.remoteAddress,
        }).catch(guard('host state write'));
        scheduler.onHello(s, hello).catch(guard('hello handling'));
      },
      onMessage(s, msg) {
        // The config a host runs changes with a job, not only at hello (a replayed result is older than the hello).
        if (msg.type === 'job.end' && msg.configHash !== undefined && !msg.replayed) {
          if (s.hello) s.hello.configHash = msg.configHash;
          hostStates.update(s.name, { configHash: msg.configHash }).catch(guard('host state write'));
        }
        scheduler.onMessage(s, msg).catch(guard(`${msg.type} handling`));
      },
      onClose(s: LiveSession) {
        if (!s.hello || !sessions.remove(s)) return;
        feed.disconnected(s);
        sshLog.info({ host: s.name, remote: s.origin.remoteAddress }, 'agent disconnected');
        hostStates.update(s.name, { lastSeenAt: new Date(s.lastInbound).toISOString() }).catch(guard('host state write'));
        scheduler.onDisconnect(s.name).catch(guard('disconnect handling'));
      },
    },
  });

  // Where hosts came from before this start: credit for their sources' reconnect storm (admission.ts).
  agentServer.admission.recall(Object.keys(registry.snapshot.hosts).flatMap((n) => hostStates.get(n) ?? []));
  const parts: HubParts = { registry, sessions, scheduler, watchers, log, store, hostStates, fleetDir: paths.root };
  const admin = new AdminServer(paths.adminSocket, makeAdminHandler(parts), log.child({ component: 'admin' }));
  await admin.listen(config.adminGroup);
  let sshAddress: AddressInfo;
  try {
    sshAddress = await agentServer.listen(listen.host, listen.port);
  } catch (err) {
    await admin.close();
    throw err;
  }
  let ws: WsListener | null = null;
  const wsAddr = opts.wsListen ?? config.wsListen;
  if (wsAddr) {
    const hp = parseHostPort(wsAddr);
    if (!hp) throw new Error(`invalid ws listen address ${wsAddr}`);
    ws = await startWsListener({ ...hp, path: config.wsPath, tls: config.tls, agentServer, limits: config.limits, log: log.child({ component: 'ws' }) });
  }
  let web: RunningWeb;
  try {
    web = await startWeb(config, { parts, store, hostStates, feed, fleetDir: paths.root, log: log.child({ component: 'web' }) });
  } catch (err) {
    await admin.close();
    await ws?.close();
    await agentServer.close();
    throw err;
  }
  registerAdmissionMetrics(web.metrics.registry, agentServer.admission);
  sessions.startSweep();
  log.info({ listen: `${sshAddress.address}:${sshAddress.port}`, ws: ws?.endpoint, socket: paths.adminSocket, hosts: Object.keys(registry.snapshot.hosts).length }, 'hub serving');

  return {
    config,
    sshAddress,
    ws,
    parts,
    agentServer,
    web,
    async stop() {
      await web.close();
      sessions.stop();
      await admin.close();
      await ws?.close();
      const closing = agentServer.close();
      for (const s of sessions.all()) s.destroySocket();
      await closing;
      await store.close();
      await hostStates.close();
    },
  };
}
