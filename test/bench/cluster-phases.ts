// The measured phases of the cluster bench (cluster-main.ts), each against one
// hub's admin socket, as an admin would run them: sequential triggers timed to
// "started", `list` timed to its last byte, a fan-out to every host timed
// until every agent has its job.ack (counted at the agents). The failover
// phase is in cluster-failover.ts. Each phase is bounded in time.
import { adminRequest, listCount, listed } from './hub.js';
import { percentile } from './metrics.js';
import type { ClusterLoad } from './cluster-pool.js';

export interface TriggerSamples { accepted: number[]; started: number[]; notDispatched: number; seconds: number }

/** TOTAL sequential triggers of HOST at the hub behind SOCKET (WARMUP more first, not kept), each followed until "started". */
export async function triggerLatency(socket: string, host: string, total: number, warmup: number): Promise<TriggerSamples> {
  const out: TriggerSamples = { accepted: [], started: [], notDispatched: 0, seconds: 0 };
  const t0 = performance.now();
  const deadline = t0 + Math.max(120, total * 0.2) * 1000;
  for (let i = 0; i < total + warmup && performance.now() < deadline; i++) {
    let a = NaN;
    let s = NaN;
    let problem = '';
    await adminRequest(socket, { op: 'trigger', hosts: [host], all: false, tags: [], action: 'switch', queue: false, follow: true }, (ev, ms) => {
      if (ev.ev === 'accepted') { a = ms; if (ev['disposition'] !== 'dispatched') out.notDispatched++; }
      else if (ev.ev === 'started') s = ms;
      else if (ev.ev === 'rejected' || ev.ev === 'error') problem = `${ev.ev}: ${String(ev['message'])}`;
      return ev.ev === 'done';
    }, 10_000);
    if (problem || !Number.isFinite(s)) throw new Error(`trigger ${i} of ${host} failed: ${problem || 'no started event within 10 s'}`);
    if (i < warmup) continue;
    out.accepted.push(a);
    out.started.push(s);
  }
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}

/** CALLS `list` calls one after the other: each one's time (connect to last byte) and the last count. */
export async function listTimes(socket: string, calls: number): Promise<{ ms: number[]; count: number }> {
  const ms: number[] = [];
  let count = 0;
  for (let i = 0; i < calls; i++) {
    const r = await listCount(socket, 30_000);
    ms.push(r.ms);
    count = r.count;
  }
  return { ms, count };
}

/** Which hub holds each host, as `list --json` at SOCKET shows it (asked as the CLI asks: gzip, its client). */
export async function holders(socket: string): Promise<Map<string, string>> {
  return new Map((await listed(socket, 30_000)).map((c) => [c.name, c.hub ?? 'local']));
}

/**
 * How many agents SOCKET's hub sees held, over all hubs (`cluster status`:
 * counts from its view of the holds, a small answer). Polling convergence
 * with `list` instead built a whole-fleet answer twice a second at one hub,
 * and that hub's memory per host, measured right after, held the garbage
 * (hub1 read 40–55 KiB per host at 45,000 agents, the others 25–27).
 */
export async function heldCount(socket: string): Promise<number> {
  let n = 0;
  await adminRequest(socket, { op: 'cluster' }, (e) => {
    if (e.ev !== 'cluster') return e.ev === 'error';
    for (const h of e['hubs'] as Array<{ agents: number }>) n += h.agents;
    return true;
  }, 30_000);
  return n;
}

export interface FanoutResult {
  hosts: number;
  accepted: string[];
  rejected: number;
  rejectedWhy: string;
  acked: number;
  /** Until every agent got its job.ack (or until the admin stream ended, if not all did). */
  allAckedS: number;
  lastAcceptedS: number;
  ends: number;
  complete: boolean;
}

/**
 * `trigger --all` at SOCKET, followed as the CLI does, timed until every one
 * of N agents has its job.ack. DURING, if given, is called every 100 ms with
 * the time since the trigger (the failover phase kills a hub from it).
 */
export async function fanout(socket: string, load: ClusterLoad, n: number, limitS: number, during?: (ms: number) => void): Promise<FanoutResult> {
  // Quiesce: acks of earlier jobs still on their way must not count.
  let before = await load.stats();
  for (const quiet = Date.now() + 10_000; (before.acks < before.jobStarts - before.duplicateStarts || before.outbox > 0) && Date.now() < quiet;) {
    await new Promise((r) => setTimeout(r, 100));
    before = await load.stats();
  }
  const wall0 = Date.now();
  const res: FanoutResult = { hosts: 0, accepted: [], rejected: 0, rejectedWhy: '', acked: 0, allAckedS: NaN, lastAcceptedS: NaN, ends: 0, complete: false };
  const r = adminRequest(socket, { op: 'trigger', hosts: [], all: true, tags: [], action: 'switch', queue: false, follow: true }, (ev, ms) => {
    if (ev.ev === 'accepted') { res.accepted.push(String(ev['jobId'])); res.lastAcceptedS = ms / 1000; }
    else if (ev.ev === 'rejected') { res.rejected++; res.rejectedWhy = String(ev['message']); }
    else if (ev.ev === 'end') res.ends++;
    else if (ev.ev === 'error') res.rejectedWhy = String(ev['message']);
    return ev.ev === 'done';
  }, limitS * 1000);
  let done = false;
  const admin = r.then((x) => { done = true; return x; });
  let after = before;
  const deadline = Date.now() + limitS * 1000;
  while (after.acks - before.acks < n && Date.now() < deadline) {
    await new Promise((res2) => setTimeout(res2, 100));
    after = await load.stats();
    during?.(Date.now() - wall0);
    // The admin stream ended and no agent holds a result or runs a job: nothing more will be acknowledged.
    if (done && after.outbox === 0 && after.running === 0) break;
  }
  const end = await admin;
  res.hosts = res.accepted.length + res.rejected;
  res.acked = after.acks - before.acks;
  res.complete = res.acked >= n;
  res.allAckedS = res.complete ? (after.lastAckAt - wall0) / 1000 : end.ms / 1000;
  return res;
}

export function p(xs: number[], q: number): number {
  return xs.length ? percentile(xs, q) : NaN;
}
