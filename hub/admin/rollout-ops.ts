// The admin ops of staged rollouts (docs/rollouts.md): start, resume, abort,
// status. The rollout runs in the hub (hub/rollout/engine.ts); these only
// parse what the admin asked, hand it over, and, with `follow`, stream its
// progress until it stops moving. An admin who disconnects leaves it running.
import type net from 'node:net';
import type { AdminRequest } from '../../common/protocol/admin.js';
import { BentoError } from '../../common/protocol/errors.js';
import { parseDuration, parseSize, type RolloutOptions } from '../../common/protocol/rollout.js';
import type { RegistryView } from '../fleet/registry.js';
import type { RolloutEngine } from '../rollout/engine.js';
import { orderHosts, waveOf } from '../rollout/plan.js';
import { hostView, rolloutDetail, rolloutSummary } from '../rollout/view.js';
import type { Reply } from './server.js';

export interface RolloutOpsDeps {
  registry: Pick<RegistryView, 'refresh'>;
  rollouts: RolloutEngine;
}

type RolloutRequest = Extract<AdminRequest, { op: `rollout.${string}` }>;

/** Progress events at most this often: a 10,000-host wave changes many times a second. */
const PROGRESS_EVERY_MS = 200;
export const DEFAULT_MAX_IN_FLIGHT = '10';
export const DEFAULT_OFFLINE_TIMEOUT = '15m';

export async function rolloutOp(d: RolloutOpsDeps, req: RolloutRequest, reply: Reply, sock: net.Socket): Promise<void> {
  const engine = d.rollouts;
  switch (req.op) {
    case 'rollout.start': {
      const options = rolloutOptions(req);
      const reg = await d.registry.refresh();
      const selected = new Set<string>();
      if (req.all) Object.keys(reg.hosts).forEach((n) => selected.add(n));
      for (const t of req.tags) for (const [n, e] of Object.entries(reg.hosts)) if (e.tags.includes(t)) selected.add(n);
      // A rollout with a host that does not exist is a typo, not a host to leave out quietly.
      const unknown = req.hosts.filter((h) => !Object.prototype.hasOwnProperty.call(reg.hosts, h));
      if (unknown.length) throw new BentoError('UNKNOWN_HOST', `no host ${unknown.map((h) => `"${h}"`).join(', ')} in the registry; nothing was started`);
      req.hosts.forEach((h) => selected.add(h));
      if (selected.size === 0) throw new BentoError('NO_TARGETS', req.tags.length ? `no host has tag ${req.tags.join(' or ')}` : 'no hosts to roll out to');
      const r = await engine.create({ hosts: orderHosts(req.hosts, selected), selection: { all: req.all, tags: req.tags, hosts: req.hosts }, options });
      return req.follow ? follow(engine, r.id, reply, sock) : reply({ ev: 'rollout', rollout: detail(engine, r.id) });
    }
    case 'rollout.resume': {
      await engine.resume(req.id, { retryFailed: req.retryFailed === true });
      return req.follow ? follow(engine, req.id, reply, sock) : reply({ ev: 'rollout', rollout: detail(engine, req.id) });
    }
    case 'rollout.abort':
      await engine.abort(req.id);
      return reply({ ev: 'rollout', rollout: detail(engine, req.id) });
    case 'rollout.status':
      if (req.id === undefined) return reply({ ev: 'rollouts', rollouts: engine.summaries() });
      engine.store.require(req.id);
      return reply({ ev: 'rollout', rollout: detail(engine, req.id) });
  }
}

function detail(engine: RolloutEngine, id: string): ReturnType<typeof rolloutDetail> {
  return rolloutDetail(engine.store.get(id)!, engine.store.memberMap(id));
}

export function rolloutOptions(req: Extract<AdminRequest, { op: 'rollout.start' }>): RolloutOptions {
  if (req.waves !== undefined && req.canary !== undefined) throw new BentoError('USAGE', 'give --canary or --waves, not both (the first step of --waves is the canary)');
  if (req.offlineTimeout !== undefined && req.offline !== 'wait') throw new BentoError('USAGE', '--offline-timeout only applies with --offline wait');
  return {
    action: req.action,
    waves: req.waves ? req.waves.map((w) => parseSize(w, '--waves step')) : null,
    canary: parseSize(req.canary ?? '1', '--canary'),
    maxInFlight: parseSize(req.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, '--max-in-flight'),
    maxFailures: parseSize(req.maxFailures ?? '0', '--max-failures', { zero: true }),
    offline: req.offline ?? 'skip',
    offlineTimeoutMs: parseDuration(req.offlineTimeout ?? DEFAULT_OFFLINE_TIMEOUT, '--offline-timeout'),
    pauseAfterCanary: req.pauseAfterCanary === true,
  };
}

/**
 * The full view, then progress (summary + the hosts that changed) as it
 * moves, then the full view again once it stopped: halted, aborted or done,
 * and no job of it still running. Ends early when the admin disconnects.
 */
function follow(engine: RolloutEngine, id: string, reply: Reply, sock: net.Socket): Promise<void> {
  const store = engine.store;
  reply({ ev: 'rollout', rollout: detail(engine, id) });
  return new Promise<void>((resolve) => {
    const changed = new Set<string>();
    let timer: NodeJS.Timeout | null = null;
    const still = (): boolean => {
      const r = store.get(id);
      if (!r) return false;
      return r.state === 'running' || store.membersOf(id).some((m) => m.state === 'running');
    };
    const flush = (): void => {
      timer = null;
      const r = store.get(id);
      if (!r) return end();
      if (!still()) {
        reply({ ev: 'rollout', rollout: detail(engine, id) });
        return end();
      }
      const members = store.memberMap(id);
      const hosts = [...changed].map((h) => hostView(r, waveOf(r, h), h, members.get(h)));
      changed.clear();
      reply({ ev: 'rollout.progress', rollout: rolloutSummary(r, members), changed: hosts });
    };
    const unwatch = store.watch(id, (host) => {
      if (host) changed.add(host);
      timer ??= setTimeout(flush, PROGRESS_EVERY_MS);
    });
    const end = (): void => {
      unwatch();
      if (timer) clearTimeout(timer);
      timer = null;
      sock.off('close', end);
      resolve();
    };
    sock.once('close', end);
    // It may have stopped before the watch began (a one-host canary that failed at once).
    if (!still()) flush();
  });
}
