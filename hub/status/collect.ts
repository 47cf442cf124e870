// Gather one status row per registered host from the running hub: registry,
// live sessions, job records, last known host facts and the published
// version (hosts/NAME jail, bento-hub deploy), then derive the state.
import type { HostStatus, StatusJob } from '../../common/protocol/admin.js';
import type { RegistryView } from '../fleet/registry.js';
import type { SessionRegistry } from '../server/sessions.js';
import type { Scheduler } from '../jobs/scheduler.js';
import { AGENT_JOB_ID } from '../jobs/job-ids.js';
import { FINAL_STATES, type JobRecord, type JobStore } from '../store/jobs.js';
import type { HostStateStore } from '../store/host-state.js';
import { readPublished } from '../publish/published.js';
import { deriveState, type Published } from './derive.js';
import { rebootNote } from './reboot-report.js';

export interface StatusSources {
  registry: RegistryView;
  sessions: SessionRegistry;
  scheduler: Scheduler;
  store: JobStore;
  hostStates: HostStateStore;
  fleetDir: string;
  /** Defaults to the publish module's reader. */
  published?: (fleetDir: string, host: string) => Promise<Published | null>;
}

export function statusJob(j: JobRecord): StatusJob {
  return {
    id: j.id, action: j.action, state: j.state, origin: AGENT_JOB_ID.test(j.id) ? 'agent' : 'hub',
    requestedAt: j.requestedAt, startedAt: j.startedAt, endedAt: j.endedAt, durationMs: j.durationMs,
    exitCode: j.exitCode, reason: j.reason,
  };
}

interface HostJobs { active: JobRecord | null; queued: JobRecord | null; finished: JobRecord[] }

function jobsByHost(store: JobStore): Map<string, HostJobs> {
  const out = new Map<string, HostJobs>();
  for (const j of store.all()) {
    let e = out.get(j.host);
    if (!e) out.set(j.host, (e = { active: null, queued: null, finished: [] }));
    if (FINAL_STATES.has(j.state)) e.finished.push(j);
    else if (j.state === 'queued') { if (!e.queued || j.requestedAt > e.queued.requestedAt) e.queued = j; }
    else if (!e.active || j.requestedAt > e.active.requestedAt) e.active = j;
  }
  return out;
}

const newest = (jobs: JobRecord[]): JobRecord | null =>
  jobs.reduce<JobRecord | null>((a, j) => (!a || (j.endedAt ?? j.requestedAt) > (a.endedAt ?? a.requestedAt) ? j : a), null);

export async function collectStatus(src: StatusSources): Promise<HostStatus[]> {
  const reg = await src.registry.refresh();
  const names = Object.keys(reg.hosts).sort();
  const jobs = jobsByHost(src.store);
  const read = src.published ?? readPublished;
  const published = await Promise.all(names.map((n) => read(src.fleetDir, n).catch(() => null)));
  return names.map((name, idx) => {
    const s = src.sessions.get(name);
    const live = s?.hello && !s.closed ? s : null;
    const facts = src.hostStates.get(name);
    const hj = jobs.get(name) ?? { active: null, queued: null, finished: [] };
    const activeRec = src.scheduler.activeJob(name) ?? hj.active;
    const active = activeRec && !FINAL_STATES.has(activeRec.state) ? statusJob(activeRec) : null;
    const finished = hj.finished.map(statusJob);
    const applied = live ? live.hello!.configHash : facts?.configHash ?? null;
    const pub = published[idx] ?? null;
    const derived = deriveState({
      connected: live !== null,
      lastConnectedAt: facts?.lastConnectedAt ?? (live ? new Date(live.connectedSince).toISOString() : null),
      published: pub, applied, active, finished,
    });
    const last = newest(hj.finished);
    const lastJob = last ? statusJob(last) : null;
    // A reboot the agent reported (kernel change) is news until a later job ends.
    const reboot = rebootNote(facts?.lastReboot, lastJob);
    return {
      name,
      state: derived.state,
      detail: reboot ? (derived.detail ? `${derived.detail}; ${reboot}` : reboot) : derived.detail,
      lastKnownState: derived.lastKnownState,
      connected: live !== null,
      connectedSince: live ? new Date(live.connectedSince).toISOString() : null,
      lastSeenAt: live ? new Date(live.lastInbound).toISOString() : facts?.lastSeenAt ?? null,
      carrier: live ? live.origin.carrier : facts?.carrier ?? null,
      via: live ? live.hello!.via ?? null : null,
      remoteAddress: live ? live.origin.remoteAddress : facts?.remoteAddress ?? null,
      published: pub ? { hash: pub.hash, publishedAt: pub.publishedAt } : null,
      applied,
      system: live ? live.hello!.system : facts?.system ?? null,
      generation: live ? live.hello!.generation : facts?.generation ?? null,
      runningJob: active,
      queuedJob: hj.queued ? statusJob(hj.queued) : null,
      lastJob,
      lastReboot: facts?.lastReboot ?? null,
    };
  });
}
