// "Jobs lost (must be 0)" for the cluster bench and the soak, with the
// invariant checker's logic (test/helpers/cluster-invariants.ts): every
// accepted job has one record in NATS in a final state (read through a fresh
// connection), every running hub's `status` shows the same last job per host
// and nothing running; plus what only the simulated agents know: no job was
// started twice, and no job an agent ran ended in the records as anything but
// its result (success: the bench agents always succeed).
import { adminRequest } from './hub.js';
import type { ClusterLoad } from './cluster-pool.js';
import type { ClusterFleet } from './cluster-fleet.js';
import { unfinishedJobs, viewDisagreements, type HostStatus } from '../helpers/cluster-invariants.js';
import type { JobRecord } from '../../hub/store/jobs.js';

export interface JobCheck {
  accepted: number;
  /** Final records of accepted jobs, by state. */
  byState: Record<string, number>;
  /** Accepted, and no final record by the deadline (or accepted twice). */
  lost: string[];
  /** Jobs an agent was sent twice. */
  duplicateStarts: number;
  /** Jobs an agent ran whose record is not its result. */
  ranNotRecorded: string[];
  /** Hosts on which the running hubs' views differ (or still show a job running). */
  disagreements: string[];
  seconds: number;
}

/** Every host's status at the hub behind SOCKET. */
export async function statusView(socket: string): Promise<Map<string, HostStatus>> {
  let hosts: HostStatus[] = [];
  let err = '';
  await adminRequest(socket, { op: 'status' }, (e) => {
    if (e.ev === 'status') { hosts = e['hosts'] as HostStatus[]; return true; }
    if (e.ev === 'error') { err = String(e['message']); return true; }
    return false;
  }, 120_000);
  if (err) throw new Error(`status: ${err}`);
  return new Map(hosts.map((h) => [h.name, h]));
}

export async function checkJobs(o: { fleet: ClusterFleet; load: ClusterLoad; accepted: string[]; sockets: string[]; timeoutS: number }): Promise<JobCheck> {
  const t0 = performance.now();
  const deadline = t0 + o.timeoutS * 1000;
  let records: JobRecord[] = [];
  let open = unfinishedJobs(o.accepted, records);
  for (;;) {
    records = await o.fleet.jobRecords();
    open = unfinishedJobs(o.accepted, records);
    if (open.open.length === 0 || performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  const byId = new Map(records.map((r) => [r.id, r]));
  const byState: Record<string, number> = {};
  for (const id of new Set(o.accepted)) {
    const s = byId.get(id)?.state;
    if (s) byState[s] = (byState[s] ?? 0) + 1;
  }
  const stats = await o.load.stats();
  const accepted = new Set(o.accepted);
  const ranNotRecorded = (await o.load.runs()).map((l) => l.split(' ')[1]!).filter((id) => accepted.has(id) && byId.get(id)?.state !== 'success');
  const hosts = new Set(o.accepted.map((id) => byId.get(id)?.host).filter((h): h is string => h !== undefined));
  let disagreements: string[] = [];
  for (const until = performance.now() + 30_000; ;) {
    disagreements = viewDisagreements(hosts, await Promise.all(o.sockets.map(statusView)));
    if (disagreements.length === 0 || performance.now() > until) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return {
    accepted: accepted.size, byState, lost: [...open.duplicates, ...open.open.map((x) => x.id)], duplicateStarts: stats.duplicateStarts,
    ranNotRecorded, disagreements, seconds: (performance.now() - t0) / 1000,
  };
}

/** One line for the log and the notes. */
export function checkText(c: JobCheck): string {
  const states = Object.entries(c.byState).map(([k, v]) => `${v} ${k}`).join(', ');
  return `${c.accepted} accepted jobs: ${states || 'none final'}; lost ${c.lost.length}, started twice ${c.duplicateStarts}, ran but recorded otherwise ${c.ranNotRecorded.length}, views differing on ${c.disagreements.length} hosts`
    + `${c.lost.length ? ` (lost e.g. ${c.lost.slice(0, 3).join(', ')})` : ''}${c.disagreements.length ? ` (e.g. ${c.disagreements.slice(0, 3).join(', ')})` : ''}`;
}
