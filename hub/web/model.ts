// One row per registered host, computed from what the hub already holds in
// memory (registry, live sessions, job records, last known host facts). The
// dashboard and the metrics read the same rows, so they cannot disagree.
// The per-host state comes from the status module (`stateProvider`, the
// same derivation as `bento-hub status`); without one a coarse fallback is used.
import type { ClientInfo } from '../../common/protocol/admin.js';
import type { Action } from '../../common/protocol/messages.js';
import { clientInfo, type HubParts } from '../admin/handlers.js';
import { FINAL_STATES, type JobRecord, type JobState, type JobStore } from '../store/jobs.js';
import type { HostState, HostStateStore } from '../store/host-state.js';
import { AGENT_JOB_ID } from '../jobs/job-ids.js';

export interface JobSummary {
  id: string; action: Action; state: JobState; requestedAt: string; startedAt: string | null;
  endedAt: string | null; durationMs: number | null; exitCode: number | null; reason: string | null; origin: 'hub' | 'agent';
}

export interface HostRow {
  name: string;
  tags: string[];
  registered: boolean;
  /** The live connection, as `bento-hub list` reports it; null when offline. */
  client: ClientInfo | null;
  /** Last known facts (survive a hub restart). */
  facts: HostState | null;
  /** One of the status module's states (up to date, running, offline, ...). */
  state: string;
  /** Short explanation of the state, if any. */
  stateDetail: string | null;
  activeJob: JobSummary | null;
  lastJob: JobSummary | null;
}

/** Per-host state from the status module (hub/status/provider.ts): given a row without state, say which state it is in. */
export type StateProvider = (row: Omit<HostRow, 'state' | 'stateDetail'> & { finishedJobs: JobSummary[] }) => { state: string; detail?: string | null };

export interface FleetSources {
  parts: HubParts;
  store: JobStore;
  hostStates: HostStateStore;
  stateProvider?: StateProvider;
}

export function summarize(j: JobRecord): JobSummary {
  return {
    id: j.id, action: j.action, state: j.state, requestedAt: j.requestedAt, startedAt: j.startedAt, endedAt: j.endedAt,
    durationMs: j.durationMs, exitCode: j.exitCode, reason: j.reason, origin: AGENT_JOB_ID.test(j.id) ? 'agent' : 'hub',
  };
}

/** Until the status module answers: running / offline / the last job's verdict / idle. */
export function fallbackState(row: Omit<HostRow, 'state' | 'stateDetail'>): { state: string; detail: string | null } {
  if (row.activeJob && (row.activeJob.state === 'running' || row.activeJob.state === 'dispatched')) return { state: 'running', detail: `${row.activeJob.action} ${row.activeJob.id}` };
  if (!row.client) return { state: 'offline', detail: null };
  const last = row.lastJob;
  if (last?.state === 'rolled-back') return { state: 'rolled back', detail: last.reason };
  if (last && (last.state === 'failure' || last.state === 'interrupted')) return { state: 'failing', detail: last.reason };
  if (last?.state === 'success') return { state: 'up to date', detail: null };
  return { state: 'new machine', detail: null };
}

/** Newest job per host (active and last finished), in one pass over the store. */
interface HostJobs { active: JobRecord | null; last: JobRecord | null; finished: JobRecord[] }

function jobsByHost(store: JobStore, only?: ReadonlySet<string>): Map<string, HostJobs> {
  const out = new Map<string, HostJobs>();
  for (const j of store.all()) {
    if (only && !only.has(j.host)) continue;
    let e = out.get(j.host);
    if (!e) out.set(j.host, (e = { active: null, last: null, finished: [] }));
    if (FINAL_STATES.has(j.state)) {
      e.finished.push(j);
      if (!e.last || (j.endedAt ?? j.requestedAt) > (e.last.endedAt ?? e.last.requestedAt)) e.last = j;
    } else if (j.state !== 'queued' && (!e.active || j.requestedAt > e.active.requestedAt)) {
      e.active = j;
    }
  }
  return out;
}

/** Rows for all registered hosts plus any connected host that is not (it was just removed). Sorted by name. */
export function fleetRows(src: FleetSources, only?: ReadonlySet<string>): HostRow[] {
  const { parts, store, hostStates } = src;
  const hosts = parts.registry.snapshot.hosts;
  const names = new Set<string>(Object.keys(hosts));
  for (const s of parts.sessions.all()) if (s.hello) names.add(s.name);
  const jobs = jobsByHost(store, only);
  const rows: HostRow[] = [];
  for (const name of [...names].sort()) {
    if (only && !only.has(name)) continue;
    const s = parts.sessions.get(name);
    const j = jobs.get(name);
    const active = parts.scheduler.activeJob(name) ?? j?.active ?? null;
    const base = {
      name,
      tags: hosts[name]?.tags ?? [],
      registered: Object.prototype.hasOwnProperty.call(hosts, name),
      client: s?.hello ? clientInfo(s, parts.scheduler) : null,
      facts: hostStates.get(name) ?? null,
      activeJob: active && !FINAL_STATES.has(active.state) ? summarize(active) : null,
      lastJob: j?.last ? summarize(j.last) : null,
    };
    let st: { state: string; detail?: string | null };
    try {
      st = src.stateProvider ? src.stateProvider({ ...base, finishedJobs: (j?.finished ?? []).map(summarize) }) : fallbackState(base);
    } catch {
      st = fallbackState(base);
    }
    rows.push({ ...base, state: st.state, stateDetail: st.detail ?? null });
  }
  return rows;
}

/** How the agent came, from hello.via: "direct", "socks5h", "socks5", "http", "proxycommand". */
export function proxyKind(via: string | undefined | null): string {
  if (!via || !via.includes(' -> ')) return 'direct';
  const m = /^([a-z0-9]+)(?::\/\/|\()/.exec(via);
  return m ? m[1]! : 'other';
}
