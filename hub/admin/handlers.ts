// What each admin request does. Kept apart from the socket plumbing
// (server.ts) so the dashboard runs the same operations through the same
// handler. Each operation takes only what it needs.
import type net from 'node:net';
import type { AdminRequest } from '../../common/protocol/admin.js';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import { BENTO_VERSION } from '../../common/protocol/version.js';
import type { Logger } from '../../common/platform/log.js';
import type { RegistryView } from '../fleet/registry.js';
import type { SessionRegistry } from '../server/sessions.js';
import type { Scheduler } from '../jobs/scheduler.js';
import type { EventBus } from '../events/types.js';
import type { AdminHandler, Reply } from './server.js';
import { openProxy, type ProxyDeps } from './proxy.js';
import { collectStatus } from '../status/collect.js';
import { clientInfo, type ReadSources } from '../status/read-model.js';
import { resolvePrebuilt } from '../jobs/prebuilt.js';
import type { BuildRecords } from '../publish/build-records.js';
import type { RolloutEngine } from '../rollout/engine.js';
import { rolloutOp } from './rollout-ops.js';

export interface AdminDeps {
  registry: RegistryView;
  sessions: SessionRegistry;
  scheduler: Scheduler;
  bus: EventBus;
  /** The read model's sources, for `status`. */
  sources: ReadSources;
  /** For --prebuilt: the last build of each host (files, or the cluster's shared records). */
  builds: Pick<BuildRecords, 'read'>;
  /** Staged rollouts (hub/rollout/): the rollout.* ops, and the `rollouts` of `status`. */
  rollouts: RolloutEngine;
  /** In a cluster: `proxy` to hosts another hub holds. */
  relay?: ProxyDeps['relay'];
  log: Logger;
}

type TriggerDeps = Pick<AdminDeps, 'registry' | 'sessions' | 'scheduler' | 'bus' | 'builds'>;

export function makeAdminHandler(hub: AdminDeps): AdminHandler {
  return async (req, reply, sock) => {
    switch (req.op) {
      case 'ping':
        reply({ ev: 'pong', hubVersion: BENTO_VERSION });
        return;
      case 'list': {
        // Only the live sessions, and each one's jobs from the scheduler: `list` is polled (scripts, the
        // bench during a reconnect storm) and must not build every host's view as `status` does.
        const { scheduler } = hub;
        const clients = hub.sessions.all().filter((s) => s.hello)
          .map((s) => clientInfo(s, scheduler.activeJob(s.name) ?? null, scheduler.queuedJob(s.name) ?? null));
        reply({ ev: 'list', clients });
        return;
      }
      case 'trigger':
        await trigger(hub, req, reply, sock);
        return;
      case 'proxy':
        await openProxy(hub, req, reply, sock);
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
  const unsubscribe: Array<() => void> = [];
  let finish: () => void = () => undefined;
  const allEnded = new Promise<void>((resolve) => { finish = resolve; });

  // All hosts at once: a fan-out must not wait for one host's record before
  // the next host's job.start (queued jobs share the journal's group commit).
  await Promise.all([...names].sort().map(async (host) => {
    if (!Object.prototype.hasOwnProperty.call(reg.hosts, host)) {
      reply({ ev: 'rejected', host, code: 'UNKNOWN_HOST', message: `no host "${host}" in the registry` });
      return;
    }
    try {
      // --prebuilt: the host switches to the hub's last build for it (a clear rejection if there is none).
      const prebuilt = req.prebuilt ? await resolvePrebuilt(hub.builds, host, hub.sessions.get(host)?.hello?.capabilities ?? null) : undefined;
      const r = await hub.scheduler.trigger(host, req.action, req.queue, prebuilt);
      // A job queued for a host that is not connected runs whenever it connects, maybe never:
      // following it would hold the admin's command silently, so only when asked to (wait).
      const offline = !hub.sessions.get(host);
      reply({ ev: 'accepted', host, jobId: r.jobId, disposition: r.disposition, action: r.action, ...(prebuilt ? { storePath: prebuilt.storePath } : {}), ...(offline ? { offline: true as const } : {}) });
      // Watching starts after job.start was sent, but before any reply can be read: that needs an I/O turn.
      if (req.follow && (!offline || req.wait === true) && !waiting.has(r.jobId)) {
        waiting.add(r.jobId);
        const sub = hub.bus.subscribe({ jobId: r.jobId }, (b) => {
          if (b.kind !== 'job') return;
          const e = b.event;
          // The admin protocol's events (common/protocol/admin.ts): the bus's seq and ts stay inside
          // the hub, and an agent's note goes out as the stderr line it always was ("bento: ...").
          reply(e.ev === 'output' ? { ev: 'output', host: e.host, jobId: e.jobId, stream: e.stream === 'note' ? 'stderr' : e.stream, data: e.data } : e);
          if (e.ev === 'end') {
            waiting.delete(e.jobId);
            // Only once every host was dispatched: an early job ending must not end the stream.
            if (waiting.size === 0 && dispatched) finish();
          }
        });
        unsubscribe.push(() => sub.unsubscribe());
      }
    } catch (err) {
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
  unsubscribe.forEach((u) => u());
  reply({ ev: 'done' });
}
