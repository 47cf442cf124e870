// The admin op `status` (`bento-hub status`): the read model's view of every
// registered host, after re-reading the registry and the published versions
// so the answer is current, in the admin protocol's shape (HostStatus).
import type { HostStatus } from '../../common/protocol/admin.js';
import { hostViews, type HostView, type ReadSources } from './read-model.js';

export async function collectStatus(src: ReadSources): Promise<HostStatus[]> {
  const reg = await src.registry.refresh();
  await src.published.refresh(Object.keys(reg.hosts));
  return hostViews(src, { registeredOnly: true }).map(hostStatus);
}

export function hostStatus(v: HostView): HostStatus {
  const { live, facts } = v;
  return {
    name: v.name,
    state: v.state,
    detail: v.detail,
    lastKnownState: v.lastKnownState,
    connected: live !== null,
    connectedSince: live ? live.since : null,
    lastSeenAt: live ? live.lastSeen : facts?.lastSeenAt ?? null,
    carrier: live ? live.carrier : facts?.carrier ?? null,
    via: live ? live.via : null,
    remoteAddress: live ? live.remoteAddress : facts?.remoteAddress ?? null,
    hub: live ? live.hub : null,
    published: v.published ? { hash: v.published.hash, publishedAt: v.published.publishedAt } : null,
    applied: v.applied,
    system: live ? live.system : facts?.system ?? null,
    generation: live ? live.generation : facts?.generation ?? null,
    runningJob: v.active,
    queuedJob: v.queued,
    lastJob: v.last,
    lastReboot: facts?.lastReboot ?? null,
  };
}
