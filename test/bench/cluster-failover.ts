// The failover phase of the cluster bench: a fan-out to every host is under
// way (the agents' jobs take jobMs), and one hub is killed with kill -9 while
// its agents run their jobs. Measured: the time until 99 % (and all) of the
// killed hub's agents are connected to the survivors again, as the agents see
// it and as `list` at a survivor shows it (`list` timed meanwhile: the
// reconnect storm), and then whether any accepted job was lost or run twice
// (cluster-check.ts).
import { cpuSeconds } from './metrics.js';
import { ListProbe } from './list-probe.js';
import type { ClusterFleet } from './cluster-fleet.js';
import type { ClusterLoad } from './cluster-pool.js';
import { fanout, holders, type FanoutResult } from './cluster-phases.js';
import { checkJobs, type JobCheck } from './cluster-check.js';

export interface FailoverResult {
  victim: string;
  victimAgents: number;
  /** Agents' view: ready again at a survivor. */
  back99S: number;
  backAllS: number;
  /** `list` at a survivor: the victim's hosts held by a survivor. */
  listed99S: number;
  /** `list` during the storm, each call's time. */
  listMs: number[];
  killedAfterS: number;
  fanout: FanoutResult;
  check: JobCheck;
  survivorCpuS: number[];
  /** CPU seconds from the kill until 99 % were back: the survivors (each), the NATS servers, the load generators. */
  stormCpuS: { survivors: number[]; nats: number; loadgen: number };
}

export interface FailoverOptions {
  fleet: ClusterFleet;
  load: ClusterLoad;
  /** Hub killed, and hub the admin asks (a survivor). */
  victim: number;
  asker: number;
  n: number;
  jobMs: number;
  limitS: number;
  log: (s: string) => void;
  /** CPU seconds so far of the NATS servers and of the load generators. */
  otherCpu: () => { nats: number; loadgen: number };
}

export async function failover(o: FailoverOptions): Promise<FailoverResult> {
  const { fleet, load } = o;
  const victim = fleet.hubs[o.victim]!;
  const asker = fleet.hubs[o.asker]!.fleet.socket;
  const before = await holders(asker);
  const victimHosts = [...before].filter(([, hub]) => hub === victim.name).map(([h]) => h);
  load.tell({ t: 'jobMs', ms: o.jobMs });
  const survivors = fleet.hubs.filter((_, i) => i !== o.victim);
  const cpu0 = survivors.map((h) => cpuSeconds(h.proc!.pid));
  const s0 = await load.stats();
  const t0 = performance.now();
  let killedAt = NaN;
  let stormCpu0 = { survivors: [] as number[], nats: 0, loadgen: 0 };
  let stormCpuS = { survivors: [] as number[], nats: NaN, loadgen: NaN };
  const kill = (async () => {
    // Once half the jobs run at the agents: the victim's agents hold jobs in flight, some not started yet.
    for (let st = s0; st.jobStarts - s0.jobStarts < o.n / 2 && performance.now() - t0 < 60_000; st = await load.stats()) await new Promise((r) => setTimeout(r, 50));
    load.tell({ t: 'mark', hub: o.victim });
    await load.stats(); // the mark is in before the sockets drop (IPC is in order)
    killedAt = performance.now();
    stormCpu0 = { survivors: survivors.map((h) => cpuSeconds(h.proc!.pid)), ...o.otherCpu() };
    o.log(`failover: kill -9 ${victim.name} (${victimHosts.length} agents), ${((killedAt - t0) / 1000).toFixed(1)} s into the fan-out`);
    await fleet.killHub(o.victim);
  })();
  const fan = fanout(asker, load, o.n, o.limitS);
  await kill;
  const since = (): number => (performance.now() - killedAt) / 1000;
  let back99S = NaN;
  let backAllS = NaN;
  let listed99S = NaN;
  const listMs: number[] = [];
  const probe = new ListProbe();
  const lister = (async () => {
    while (!Number.isFinite(listed99S) && since() < o.limitS) {
      const t = performance.now();
      try {
        const r = await probe.ask({ socket: asker, timeoutMs: 30_000, watch: { hosts: victimHosts, leftHub: victim.name } });
        listMs.push(r.ms);
        if (r.moved >= 0.99 * victimHosts.length) listed99S = since();
      } catch { /* counted as missing below */ }
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - t))));
    }
  })();
  let lastLog = 0;
  while (!Number.isFinite(backAllS) && since() < o.limitS) {
    const st = await load.stats();
    if (!Number.isFinite(back99S) && st.markedBack >= 0.99 * st.marked) {
      back99S = since();
      const other = o.otherCpu();
      stormCpuS = { survivors: survivors.map((h, i) => cpuSeconds(h.proc!.pid) - stormCpu0.survivors[i]!), nats: other.nats - stormCpu0.nats, loadgen: other.loadgen - stormCpu0.loadgen };
    }
    if (st.markedBack >= st.marked) backAllS = since();
    if (since() - lastLog >= 10) { lastLog = since(); o.log(`failover: ${st.markedBack}/${st.marked} of ${victim.name}'s agents back after ${since().toFixed(0)} s (${st.perHub.join('/')} per hub)`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  await lister;
  // The storm is over: `list` once more when quiet, for comparison.
  try {
    listMs.push((await probe.ask({ socket: asker, timeoutMs: 30_000, watch: { hosts: [], leftHub: victim.name } })).ms);
  } finally {
    await probe.close();
  }
  const fanned = await fan;
  const survivorCpuS = survivors.map((h, i) => cpuSeconds(h.proc!.pid) - cpu0[i]!);
  o.log(`failover: fan-out ${fanned.accepted.length} accepted, ${fanned.rejected} refused (${fanned.rejectedWhy}); checking the jobs`);
  load.tell({ t: 'jobMs', ms: 0 });
  const check = await checkJobs({ fleet, load, accepted: fanned.accepted, sockets: survivors.map((h) => h.fleet.socket), timeoutS: 120 });
  return { victim: victim.name, victimAgents: victimHosts.length, back99S, backAllS, listed99S, listMs, killedAfterS: (killedAt - t0) / 1000, fanout: fanned, check, survivorCpuS, stormCpuS };
}
