// The hub's one read model: per host, what `bento-hub status`, the dashboard
// and the metrics show, computed once from what the hub holds in memory
// (registry, who holds which host, job records, last known host facts,
// published versions). On a cluster of hubs the holders are every hub's
// (hub/holders), so every hub shows the whole fleet. Before, the dashboard (web/model.ts) and `status`
// (status/collect.ts) each grouped jobs by host and derived states in
// parallel, and could disagree; now they map the same HostView.
import type { ClientInfo, HostStateName, StatusJob } from '../../common/protocol/admin.js';
import type { RegistryView } from '../fleet/registry.js';
import type { Holder, HostHolders } from '../holders/types.js';
import { AGENT_JOB_ID } from '../jobs/job-ids.js';
import { FINAL_STATES, type JobRecord } from '../store/jobs.js';
import type { HostState } from '../store/host-state.js';
import { deriveState, type Published } from './derive.js';
import { rebootNote } from './reboot-report.js';

export interface ReadSources {
  registry: Pick<RegistryView, 'snapshot' | 'refresh'>;
  /** Who holds which host: this hub's sessions, and on a cluster the other hubs' too. */
  holders: Pick<HostHolders, 'hubName' | 'holder' | 'all'>;
  /** The scheduler's active job of a host (it knows before the record says so). */
  activeJob(host: string): JobRecord | undefined;
  jobs: { all(): JobRecord[]; get(id: string): JobRecord | undefined };
  facts: { get(name: string): HostState | undefined };
  /** The versions the hub publishes (status/published-cache.ts): read ahead, so views never wait. */
  published: { get(host: string): Published | null; refresh(hosts: string[]): Promise<void> };
}

export interface HostView {
  name: string;
  tags: string[];
  /** In the registry (a connected host that was just removed is not). */
  registered: boolean;
  /** The hub holding it right now (a live, welcomed session there); null when offline. */
  live: Holder | null;
  /** The live session as `bento-hub list` reports it; null when offline. */
  client: ClientInfo | null;
  /** Last known facts (survive a hub restart). */
  facts: HostState | null;
  active: StatusJob | null;
  queued: StatusJob | null;
  finished: StatusJob[];
  /** The newest finished job. */
  last: StatusJob | null;
  published: Published | null;
  /** The published config hash the host reports running. */
  applied: string | null;
  state: HostStateName;
  detail: string | null;
  lastKnownState: HostStateName | null;
}

export function statusJob(j: JobRecord): StatusJob {
  return {
    id: j.id, action: j.action, state: j.state, origin: AGENT_JOB_ID.test(j.id) ? 'agent' : 'hub',
    requestedAt: j.requestedAt, startedAt: j.startedAt, endedAt: j.endedAt, durationMs: j.durationMs,
    exitCode: j.exitCode, reason: j.reason,
  };
}

/** A held host as `bento-hub list` shows it: its running job and the one queued behind it, as `status` sees them. */
export function clientInfo(h: Holder, job: JobRecord | null, queued: JobRecord | null): ClientInfo {
  return {
    name: h.host,
    hub: h.hub,
    remoteAddress: h.remoteAddress,
    carrier: h.carrier,
    endpoint: h.endpoint,
    connectedSince: h.since,
    agentVersion: h.agentVersion,
    lastHeartbeat: h.lastSeen,
    system: h.system,
    generation: h.generation,
    configHash: h.configHash,
    runningJob: job && !FINAL_STATES.has(job.state) ? { jobId: job.id, action: job.action, startedAt: job.startedAt ?? job.requestedAt } : null,
    queuedJob: queued ? { jobId: queued.id, action: queued.action, requestedAt: queued.requestedAt } : null,
  };
}


interface HostJobs { active: JobRecord | null; queued: JobRecord | null; finished: JobRecord[]; last: JobRecord | null }

const endOf = (j: JobRecord): string => j.endedAt ?? j.requestedAt;

/** Every host's jobs in one pass over the records. */
function jobsByHost(jobs: JobRecord[], only?: ReadonlySet<string>): Map<string, HostJobs> {
  const out = new Map<string, HostJobs>();
  for (const j of jobs) {
    if (only && !only.has(j.host)) continue;
    let e = out.get(j.host);
    if (!e) out.set(j.host, (e = { active: null, queued: null, finished: [], last: null }));
    if (FINAL_STATES.has(j.state)) {
      e.finished.push(j);
      if (!e.last || endOf(j) > endOf(e.last)) e.last = j;
    } else if (j.state === 'queued') {
      if (!e.queued || j.requestedAt > e.queued.requestedAt) e.queued = j;
    } else if (!e.active || j.requestedAt > e.active.requestedAt) {
      e.active = j;
    }
  }
  return out;
}

/**
 * One view per host: the registered ones, plus connected hosts that are not
 * (just removed) unless `registeredOnly`. Sorted by name; `only` narrows it to
 * some hosts (one dashboard row).
 */
export function hostViews(src: ReadSources, opts: { only?: ReadonlySet<string>; registeredOnly?: boolean } = {}): HostView[] {
  const hosts = src.registry.snapshot.hosts;
  const names = new Set<string>(Object.keys(hosts));
  const held = new Map<string, Holder>();
  for (const h of src.holders.all()) held.set(h.host, h);
  if (!opts.registeredOnly) for (const h of held.keys()) names.add(h);
  const jobs = jobsByHost(src.jobs.all(), opts.only);
  const views: HostView[] = [];
  for (const name of [...names].sort()) {
    if (opts.only && !opts.only.has(name)) continue;
    const live = held.get(name) ?? null;
    const facts = src.facts.get(name) ?? null;
    const hj = jobs.get(name) ?? { active: null, queued: null, finished: [], last: null };
    const activeRec = src.activeJob(name) ?? hj.active;
    const active = activeRec && !FINAL_STATES.has(activeRec.state) ? statusJob(activeRec) : null;
    const finished = hj.finished.map(statusJob);
    const last = hj.last ? statusJob(hj.last) : null;
    // A session here knows the newest (job.end updates it); another hub's hold is as of its hello, the facts are newer.
    const applied = live ? (live.local ? live.configHash : facts?.configHash ?? live.configHash) : facts?.configHash ?? null;
    const published = src.published.get(name);
    const derived = deriveState({
      connected: live !== null,
      lastConnectedAt: facts?.lastConnectedAt ?? (live ? live.since : null),
      published, applied, active, finished,
    });
    // A reboot the agent reported (kernel change) is news until a later job ends.
    const reboot = rebootNote(facts?.lastReboot, last);
    views.push({
      name,
      tags: hosts[name]?.tags ?? [],
      registered: Object.prototype.hasOwnProperty.call(hosts, name),
      live,
      client: live ? clientInfo(live, active ? activeRec : null, hj.queued) : null,
      facts,
      active,
      queued: hj.queued ? statusJob(hj.queued) : null,
      finished,
      last,
      published,
      applied,
      state: derived.state,
      detail: reboot ? (derived.detail ? `${derived.detail}; ${reboot}` : reboot) : derived.detail,
      lastKnownState: derived.lastKnownState,
    });
  }
  return views;
}

/** How the agent came, from hello.via: "direct", "socks5h", "socks5", "http", "proxycommand". */
export function proxyKind(via: string | undefined | null): string {
  if (!via || !via.includes(' -> ')) return 'direct';
  const m = /^([a-z0-9]+)(?::\/\/|\()/.exec(via);
  return m ? m[1]! : 'other';
}
