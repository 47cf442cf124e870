// When a soak cycle finds a problem: what to read first. For the first few
// problem jobs (lost, or ran but recorded otherwise) their record in NATS and
// their host; for the first few hosts the hubs disagree on, what each running
// hub's `status` says of them, and what each NATS server's replica holds of
// the job records and the hosts' holds records (replica-probe.ts); then
// every hub's log lines naming those jobs and hosts (log-excerpts.ts). A job or host already reported in an earlier
// cycle (the check is cumulative) is not reported again.
import path from 'node:path';
import { HUB_LOG, PREFIX, type ClusterFleet } from '../bench/cluster-fleet.js';
import { clusterNames } from '../../hub/cluster/names.js';
import { JOBS_STORE } from '../../hub/store/jobs.js';
import { HOLDS_STORE } from '../../hub/topology.js';
import { probeReplicas } from './replica-probe.js';
import { statusView, type JobCheck } from '../bench/cluster-check.js';
import { logExcerpts, type ExcerptKey } from './log-excerpts.js';

export interface ProblemReportOptions {
  fleet: ClusterFleet;
  check: JobCheck;
  /** Wall-clock ms the cycle began (a host's log lines from a little before it). */
  cycleStart: number;
  /** Keys reported in earlier cycles (updated). */
  seen: Set<string>;
  log: (s: string) => void;
}

const FIRST = 3;
const LEAD_MS = 10_000;
const MAX_LINES = 60;

export async function reportProblems(o: ProblemReportOptions): Promise<void> {
  const fresh = (xs: string[]): string[] => xs.filter((x) => !o.seen.has(x)).slice(0, FIRST);
  const jobs = fresh([...new Set([...o.check.lost, ...o.check.ranNotRecorded])]);
  const records = jobs.length ? await o.fleet.jobRecords().catch(() => []) : [];
  const byId = new Map(records.map((r) => [r.id, r]));
  const hosts = new Set(fresh(o.check.disagreements));
  for (const id of jobs) {
    const r = byId.get(id);
    o.log(`problem job ${id}: ${r ? JSON.stringify({ host: r.host, state: r.state, hub: r.hub, epoch: r.epoch, requestedAt: r.requestedAt, startedAt: r.startedAt, endedAt: r.endedAt, reason: r.reason }) : 'no record in NATS'}`);
    if (r && !o.seen.has(r.host)) hosts.add(r.host);
  }
  const running = o.fleet.hubs.filter((h) => h.proc);
  const views = await Promise.all(running.map((h) => statusView(h.fleet.socket).catch((err: Error) => err)));
  for (const host of hosts) {
    running.forEach((h, i) => {
      const v = views[i]!;
      o.log(`problem host ${host} at ${h.name}: ${v instanceof Error ? `status failed: ${v.message}` : JSON.stringify(v.get(host) ?? null)}`);
    });
  }
  const names = clusterNames(PREFIX);
  const servers = o.fleet.nats.nodes.filter((n) => n.daemon).map((n) => ({ name: n.name, url: n.url }));
  const probes = [...jobs.map((id) => [names.bucket(JOBS_STORE), id] as const), ...[...hosts].map((h) => [names.bucket(HOLDS_STORE), h] as const)];
  for (const [bucket, key] of probes) for (const line of await probeReplicas(servers, bucket, key)) o.log(`replicas: ${line}`);
  const keys: ExcerptKey[] = [...jobs.map((key) => ({ key, kind: 'job' as const })), ...[...hosts].map((key) => ({ key, kind: 'host' as const }))];
  for (const k of keys) o.seen.add(k.key);
  if (keys.length === 0) return;
  const files = o.fleet.hubs.map((h) => ({ name: h.name, file: path.join(h.fleet.dir, HUB_LOG) }));
  for (const line of logExcerpts({ files, keys, since: o.cycleStart - LEAD_MS, maxLines: MAX_LINES })) o.log(line);
}
