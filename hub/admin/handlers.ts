// What each admin request does. Kept apart from the socket plumbing
// (server.ts) so the dashboard runs the same operations through the same
// handler. Each operation takes only what it needs. On a cluster of hubs
// every operation here sees the whole fleet: `list` and `status` read every
// hub's holds, and a trigger reaches whichever hub holds its host (router).
import type net from 'node:net';
import type { AdminRequest, ClusterStatus } from '../../common/protocol/admin.js';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import { BENTO_VERSION } from '../../common/protocol/version.js';
import type { Logger } from '../../common/platform/log.js';
import type { RegistryView } from '../fleet/registry.js';
import type { SessionRegistry } from '../server/sessions.js';
import type { Scheduler } from '../jobs/scheduler.js';
import type { TriggerRouter } from '../jobs/router.js';
import type { HostHolders } from '../holders/types.js';
import type { JobStore } from '../store/jobs.js';
import type { EventBus } from '../events/types.js';
import type { AdminHandler, Reply } from './server.js';
import { openProxy, type ProxyDeps } from './proxy.js';
import { JobFollower } from './follow.js';
import { collectStatus } from '../status/collect.js';
import { clientInfo, type ReadSources } from '../status/read-model.js';
import { resolvePrebuilt } from '../jobs/prebuilt.js';
import type { BuildRecords } from '../publish/build-records.js';
import type { RolloutEngine } from '../rollout/engine.js';
import { rolloutOp } from './rollout-ops.js';
import { jobOp } from './job-op.js';

export interface AdminDeps {
  registry: RegistryView;
  /** This hub's own sessions (`proxy` rides one). */
  sessions: SessionRegistry;
  /** Who holds which host, fleet-wide. */
  holders: Pick<HostHolders, 'holder' | 'all'>;
  scheduler: Pick<Scheduler, 'activeJob' | 'queuedJob'>;
  router: TriggerRouter;
  /** Job records and stored output: `list` (hosts another hub holds), trigger --follow, `job`. */
  jobs: Pick<JobStore, 'openFor' | 'readOutput' | 'get'>;
  bus: EventBus;
  /** The read model's sources, for `status`. */
  sources: ReadSources;
  /** `cluster status`. */
  clusterStatus: () => Promise<ClusterStatus>;
  /** For --prebuilt: the last build of each host (files, or the cluster's shared records). */
  builds: Pick<BuildRecords, 'read'>;
  /** Staged rollouts (hub/rollout/): the rollout.* ops, and the `rollouts` of `status`. */
  rollouts: RolloutEngine;
  /** In a cluster: `proxy` to hosts another hub holds. */
  relay?: ProxyDeps['relay'];
  log: Logger;
}

type TriggerDeps = Pick<AdminDeps, 'registry' | 'holders' | 'router' | 'jobs' | 'bus' | 'builds' | 'log'>;

export function makeAdminHandler(hub: AdminDeps): AdminHandler {
  return async (req, reply, sock) => {
    switch (req.op) {
      case 'ping':
        reply({ ev: 'pong', hubVersion: BENTO_VERSION });
        return;
      case 'list': {
        // Only the held hosts, and each one's jobs: from this hub's scheduler for its own sessions, from the
        // shared records (per-host index) for hosts another hub holds. `list` is polled (scripts, the bench
        // during a reconnect storm) and must not build every host's view as `status` does. In no order: the
        // CLI sorts, and sorting 30,000 names here took 20-90 ms of the hub's event loop.
        const { scheduler, jobs } = hub;
        const clients = hub.holders.all().map((h) => {
          if (h.local) return clientInfo(h, scheduler.activeJob(h.host) ?? null, scheduler.queuedJob(h.host) ?? null);
          const open = jobs.openFor(h.host);
          return clientInfo(h, open.filter((j) => j.state !== 'queued').pop() ?? null, open.filter((j) => j.state === 'queued').pop() ?? null);
        });
        reply({ ev: 'list', clients });
        return;
      }
      case 'trigger':
        await trigger(hub, req, reply, sock);
        return;
      case 'proxy':
        await openProxy(hub, req, reply, sock);
        return;
      case 'job':
        await jobOp(hub, req, reply, sock);
        return;
      case 'status':
        reply({ ev: 'status', generatedAt: new Date().toISOString(), hosts: await collectStatus(hub.sources), rollouts: hub.rollouts.active() });
        return;
      case 'rollout.start':
      case 'rollout.resume':
      case 'rollout.abort':
      case 'rollout.status':
        await rolloutOp(hub, req, reply, sock);
        return;
      case 'cluster':
        reply({ ev: 'cluster', ...(await hub.clusterStatus()) });
        return;
    }
  };
}

async function trigger(hub: TriggerDeps, req: Extract<AdminRequest, { op: 'trigger' }>, reply: Reply, sock: net.Socket): Promise<void> {
  const reg = await hub.registry.refresh();
  const names = new Set<string>();
  if (req.all) Object.keys(reg.hosts).forEach((n) => names.add(n));
  for (const t of req.tags) for (const [n, e] of Object.entries(reg.hosts)) if (e.tags.includes(t)) names.add(n);
  for (const n of req.hosts) names.add(n);
  if (names.size === 0) throw new BentoError('NO_TARGETS', req.tags.length ? `no host has tag ${req.tags.join(' or ')}` : 'no hosts to trigger');

  const waiting = new Set<string>();
  let dispatched = false;
  let finish: () => void = () => undefined;
  const allEnded = new Promise<void>((resolve) => { finish = resolve; });
  // Subscribed before any job is sent (follow.ts): a job that runs at another hub reaches us through the bus.
  const follower = req.follow ? new JobFollower({
    bus: hub.bus, jobs: hub.jobs, reply, log: hub.log,
    ended: (jobId) => {
      waiting.delete(jobId);
      // Only once every host was dispatched: an early job ending must not end the stream.
      if (waiting.size === 0 && dispatched) finish();
    },
  }, names) : null;
  follower?.start();

  // All hosts at once: a fan-out must not wait for one host's record before
  // the next host's job.start (queued jobs share the journal's group commit).
  await Promise.all([...names].sort().map(async (host) => {
    if (!Object.prototype.hasOwnProperty.call(reg.hosts, host)) {
      reply({ ev: 'rejected', host, code: 'UNKNOWN_HOST', message: `no host "${host}" in the registry` });
      return;
    }
    follower?.expect(host);
    try {
      // --prebuilt: the host switches to the hub's last build for it (a clear rejection if there is none).
      const prebuilt = req.prebuilt ? await resolvePrebuilt(hub.builds, host, hub.holders.holder(host)?.capabilities ?? null) : undefined;
      const r = await hub.router.trigger({ host, action: req.action, queue: req.queue, ...(prebuilt ? { prebuilt } : {}) });
      // A job queued for a host that is not connected runs whenever it connects, maybe never:
      // following it would hold the admin's command silently, so only when asked to (wait).
      const { offline } = r;
      reply({ ev: 'accepted', host, jobId: r.jobId, disposition: r.disposition, action: r.action, ...(prebuilt ? { storePath: prebuilt.storePath } : {}), ...(offline ? { offline: true as const } : {}) });
      if (follower && (!offline || req.wait === true) && !waiting.has(r.jobId)) {
        waiting.add(r.jobId);
        follower.follow(host, r.jobId);
      } else {
        follower?.skip(host);
      }
    } catch (err) {
      follower?.skip(host);
      const e = asBentoError(err);
      reply({ ev: 'rejected', host, code: e.code, message: e.message });
    }
  }));
  dispatched = true;
  if (waiting.size > 0) {
    // The admin may detach (Ctrl-C); the jobs go on without a watcher.
    const detached = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    await Promise.race([allEnded, detached]);
  }
  follower?.close();
  reply({ ev: 'done' });
}
