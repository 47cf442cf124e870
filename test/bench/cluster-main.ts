// `npm run bench -- --hubs 3`: the cluster benchmark (docs/performance.md,
// "Several hubs"). First a single hub with N/H agents (the baseline, measured
// in the same run: the load one hub of the cluster carries), then a 3-node
// NATS JetStream cluster and H hubs with all N agents, spread over the hubs by
// the agents' own stable order (endpointOrder "spread") and over several
// load-generator processes (none holds more descriptors than the limit). Each
// phase is bounded in time; every process is killed by PID at the end.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { argv, BACKOFF, HEARTBEAT_MS, HUBS, IN_FLIGHT, JOB_MS, N, NOFILE, VICTIM_SHARE, NOFILE_HARD, runs, TRIGGERS, W, WARMUP_TRIGGERS } from './options.js';
import { hostName, killHub, startHubProcess } from './hub.js';
import { cpuSeconds, memOf } from './metrics.js';
import { M_, complete, extras, log, notes, run, sleep } from './state.js';
import { ClusterFleet, waitAdmin } from './cluster-fleet.js';
import { ClusterLoad } from './cluster-pool.js';
import { formatTraffic, natsCpuProfiles, natsTraffic, trafficPer } from './nats-traffic.js';
import { fanout, heldCount, holders, listTimes, p, triggerLatency } from './cluster-phases.js';
import { failover } from './cluster-failover.js';
import { registryEditTimes } from './cluster-cli.js';
import { checkText } from './cluster-check.js';
import { clusterReport } from './cluster-report.js';

const loads = new Set<ClusterLoad>();
let fleet: ClusterFleet | null = null;

/** Synchronous part of the bench's exit cleanup (main.ts): load generators; hubs and NATS die by PID through their own hooks. */
export function killClusterSync(): void {
  for (const l of loads) l.kill();
}

async function baseline(cluster: ClusterFleet, nodeArgs: string[]): Promise<void> {
  const nb = Math.ceil(N / HUBS);
  const single = await ClusterFleet.baseline(cluster, nb);
  const hub = startHubProcess(single, NOFILE, nodeArgs);
  try {
    await waitAdmin(single, hub, 60);
    await sleep(1000);
    const base = memOf(hub.pid);
    const load = await ClusterLoad.start({ agents: single.agents, endpoints: [{ host: '127.0.0.1', port: single.port }], workers: Math.max(2, Math.ceil(W / HUBS)), inFlight: IN_FLIGHT, backoff: BACKOFF, jobMs: 0, addressBase: 1 });
    loads.add(load);
    try {
      log(`baseline: one hub, ${nb} agents`);
      const c0 = cpuSeconds(hub.pid);
      load.tell({ t: 'connect' });
      const conn = await load.waitReady('baseline connect', nb, Math.max(60, nb / 40), log);
      M_['single_agents'] = conn.last.ready;
      M_['single_connect_s'] = conn.seconds;
      M_['single_connect_hub_cpu_ms_per_handshake'] = ((cpuSeconds(hub.pid) - c0) * 1000) / Math.max(1, conn.last.ready);
      if (!conn.ok) throw new Error(`baseline: only ${conn.last.ready}/${nb} agents connected`);
      await sleep(5000);
      M_['single_rss_per_host_kib'] = (memOf(hub.pid).rssKiB - base.rssKiB) / nb;
      if (runs('triggers')) {
        const t = await triggerLatency(single.socket, hostName(0), TRIGGERS, WARMUP_TRIGGERS);
        M_['single_trigger_p50_ms'] = p(t.started, 50);
        M_['single_trigger_p99_ms'] = p(t.started, 99);
      }
      const l = await listTimes(single.socket, 5);
      M_['single_list_p50_ms'] = p(l.ms, 50);
      M_['single_list_max_ms'] = Math.max(...l.ms);
      if (runs('fanout')) {
        const f0 = cpuSeconds(hub.pid);
        const f = await fanout(single.socket, load, nb, Math.max(60, nb / 40));
        M_['single_fanout_acked_s'] = f.allAckedS;
        M_['single_fanout_hub_cpu_s'] = cpuSeconds(hub.pid) - f0;
        if (!f.complete) notes.push(`baseline fan-out: ${f.acked}/${nb} acknowledged`);
      }
      log(`baseline: ${M_['single_rss_per_host_kib']!.toFixed(1)} KiB per host, trigger p50/p99 ${M_['single_trigger_p50_ms']?.toFixed(2)}/${M_['single_trigger_p99_ms']?.toFixed(2)} ms, list ${M_['single_list_p50_ms']!.toFixed(0)} ms, fan-out ${M_['single_fanout_acked_s']?.toFixed(2)} s`);
    } finally {
      await load.stop();
      loads.delete(load);
    }
  } finally {
    await killHub(hub, 'SIGTERM');
  }
}

export async function runCluster(nodeArgs: string[]): Promise<void> {
  run.baseDir = mkdtempSync(path.join(argv.base ? path.resolve(argv.base) : os.tmpdir(), 'bento-cbench-'));
  extras['loadavgAtStart'] = os.loadavg();
  log(`cluster bench: ${N} agents on ${HUBS} hubs, ${W} load generators; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  fleet = await ClusterFleet.create({
    dir: run.baseDir, hubs: HUBS, clients: N, heartbeatMs: HEARTBEAT_MS, livenessMs: 2000, nofile: NOFILE, nodeArgs, log,
    ...(argv['hub-logs'] ? { logs: { level: 'warn' } } : {}),
    natsProfile: argv['nats-cpu-prof'] !== undefined,
  });
  try {
    if (runs('baseline')) await baseline(fleet, nodeArgs);
    await cluster(fleet);
  } finally {
    await fleet.stop();
    fleet = null;
  }
  extras['loadavgAtEnd'] = os.loadavg();
  clusterReport();
}

async function cluster(f: ClusterFleet): Promise<void> {
  const starts = await Promise.all(f.hubs.map((_, i) => f.startHub(i)));
  M_['cluster_hub_start_s'] = Math.max(...starts);
  await sleep(2000);
  const base = f.hubs.map((h) => memOf(h.proc!.pid).rssKiB);
  M_['nats_rss_idle_mib'] = f.natsPids().reduce((s, pid) => s + memOf(pid).rssKiB, 0) / 1024;
  const load = await ClusterLoad.start({ agents: f.agents, endpoints: f.endpoints, workers: W, inFlight: IN_FLIGHT * HUBS, backoff: BACKOFF, jobMs: 0, addressBase: 1, ...(VICTIM_SHARE !== null ? { first: { hub: 1, share: VICTIM_SHARE } } : {}) });
  loads.add(load);
  try {
    log(`cluster: connecting ${N} agents to ${HUBS} hubs`);
    const cpu0 = f.hubs.map((h) => cpuSeconds(h.proc!.pid));
    load.tell({ t: 'connect' });
    const conn = await load.waitReady('cluster connect', N, Math.max(60, N / 40), log);
    M_['cluster_agents'] = conn.last.ready;
    M_['cluster_connect_s'] = conn.seconds;
    M_['cluster_connect_hub_cpu_ms_per_handshake'] = (f.hubs.reduce((s, h, i) => s + cpuSeconds(h.proc!.pid) - cpu0[i]!, 0) * 1000) / Math.max(1, conn.last.ready);
    extras['agentsPerHub'] = conn.last.perHub;
    complete['connect'] = conn.ok;
    if (!conn.ok) throw new Error(`cluster: only ${conn.last.ready}/${N} agents connected (last error: ${conn.last.lastError})`);
    // Every hub's view holds every claim (so `list` anywhere shows all N): asked with `cluster status`
    // (heldCount: why not `list`), at every hub.
    const t0 = performance.now();
    let seen: number[] = [];
    while (performance.now() - t0 < 120_000) {
      seen = await Promise.all(f.hubs.map((h) => heldCount(h.fleet.socket)));
      if (seen.every((n) => n >= N)) break;
      await sleep(500);
    }
    M_['cluster_list_converged_s'] = (performance.now() - t0) / 1000;
    if (!seen.every((n) => n >= N)) notes.push(`cluster: the hubs' views held ${seen.join('/')} of ${N} agents after 120 s`);
    await sleep(5000);
    const perHost = f.hubs.map((h, i) => (memOf(h.proc!.pid).rssKiB - base[i]!) / Math.max(1, conn.last.perHub[i]!));
    extras['rssPerHostPerHubKiB'] = perHost;
    M_['cluster_rss_per_host_per_hub_kib'] = Math.max(...perHost);
    M_['cluster_hub_rss_max_mib'] = Math.max(...f.hubs.map((h) => memOf(h.proc!.pid).rssKiB)) / 1024;
    M_['nats_rss_mib'] = f.natsPids().reduce((s, pid) => s + memOf(pid).rssKiB, 0) / 1024;
    M_['nats_rss_per_host_kib'] = (M_['nats_rss_mib']! - M_['nats_rss_idle_mib']!) * 1024 / N;
    log(`cluster: ${N} connected in ${conn.seconds.toFixed(1)} s (${conn.last.perHub.join('/')} per hub); ${perHost.map((x) => x.toFixed(1)).join('/')} KiB per host per hub; NATS ${M_['nats_rss_mib']!.toFixed(0)} MiB`);

    const host = hostName(0);
    const at = (await holders(f.hubs[0]!.fleet.socket)).get(host);
    const owner = f.hubs.findIndex((h) => h.name === at);
    const asker = (Math.max(0, owner) + 1) % HUBS;
    if (runs('triggers')) {
      const t = await triggerLatency(f.hubs[asker]!.fleet.socket, host, TRIGGERS, WARMUP_TRIGGERS);
      M_['cluster_trigger_p50_ms'] = p(t.started, 50);
      M_['cluster_trigger_p99_ms'] = p(t.started, 99);
      M_['cluster_trigger_accepted_p50_ms'] = p(t.accepted, 50);
      complete['triggers'] = t.started.length >= TRIGGERS;
      log(`cluster: trigger of ${host} (held by ${at}) at ${f.hubs[asker]!.name}: started p50 ${M_['cluster_trigger_p50_ms']!.toFixed(2)} ms, p99 ${M_['cluster_trigger_p99_ms']!.toFixed(2)} ms`);
    }
    const l = await listTimes(f.hubs[asker]!.fleet.socket, 5);
    M_['cluster_list_p50_ms'] = p(l.ms, 50);
    M_['cluster_list_max_ms'] = Math.max(...l.ms);
    const edit = await registryEditTimes(f.hubs[asker]!.fleet.dir);
    M_['cluster_cli_add_host_ms'] = edit.addMs;
    M_['cluster_cli_remove_host_ms'] = edit.removeMs;
    log(`cluster: registry of ${N} hosts: add-host ${edit.addMs.toFixed(0)} ms, remove-host ${edit.removeMs.toFixed(0)} ms (CLI at ${f.hubs[asker]!.name})`);
    if (runs('fanout')) {
      // What the NATS servers and the hubs spend with every agent connected and nothing to do (watch
      // heartbeats, the watchdogs' polls, hub heartbeats): the floor under the fan-out's CPU below.
      const hubsCpu = (): number => f.hubs.reduce((a, h) => a + cpuSeconds(h.proc!.pid), 0);
      const i1 = { hubs: hubsCpu(), nats: otherCpu(f, load).nats };
      await sleep(5000);
      M_['cluster_idle_nats_cpu_per_s'] = (otherCpu(f, load).nats - i1.nats) / 5;
      M_['cluster_idle_hubs_cpu_per_s'] = (hubsCpu() - i1.hubs) / 5;
      const c1 = f.hubs.map((h) => cpuSeconds(h.proc!.pid));
      const o1 = otherCpu(f, load);
      const s1 = await f.streamSeqs();
      const t1 = await natsTraffic(f.nats);
      const profiles = argv['nats-cpu-prof'] ? natsCpuProfiles(f.nats, path.resolve(argv['nats-cpu-prof']), 10) : null;
      const r = await fanout(f.hubs[0]!.fleet.socket, load, N, Math.max(120, N / 20));
      const o2 = otherCpu(f, load);
      await sleep(1000); // writes of the last jobs still on their way
      const s2 = await f.streamSeqs();
      await profiles;
      const traffic = trafficPer(t1, await natsTraffic(f.nats), Math.max(1, r.acked));
      extras['fanoutNatsTrafficPerJob'] = traffic;
      M_['cluster_fanout_job_writes_per_job'] = (s2.jobs - s1.jobs) / Math.max(1, r.acked);
      M_['cluster_fanout_output_writes_per_job'] = (s2.output - s1.output) / Math.max(1, r.acked);
      M_['cluster_fanout_nats_cpu_s'] = o2.nats - o1.nats;
      M_['cluster_fanout_loadgen_cpu_s'] = o2.loadgen - o1.loadgen;
      M_['cluster_fanout_acked_s'] = r.allAckedS;
      M_['cluster_fanout_acked'] = r.acked;
      M_['cluster_fanout_last_accepted_s'] = r.lastAcceptedS;
      extras['fanoutHubCpuS'] = f.hubs.map((h, i) => cpuSeconds(h.proc!.pid) - c1[i]!);
      complete['fanout'] = r.complete;
      if (!r.complete) notes.push(`fan-out: ${r.acked}/${N} acknowledged; ${r.rejected} refused (${r.rejectedWhy})`);
      log(`cluster: fan-out to ${N} at hub1, all acknowledged after ${r.allAckedS.toFixed(2)} s (last accepted ${r.lastAcceptedS.toFixed(2)} s), CPU: hubs ${(extras['fanoutHubCpuS'] as number[]).map((x) => x.toFixed(1)).join('/')} s, NATS ${M_['cluster_fanout_nats_cpu_s']!.toFixed(1)} s, load generators ${M_['cluster_fanout_loadgen_cpu_s']!.toFixed(1)} s; replicated writes per job: ${M_['cluster_fanout_job_writes_per_job']!.toFixed(2)} job records, ${M_['cluster_fanout_output_writes_per_job']!.toFixed(2)} output; NATS traffic per job (the servers' view of each connection):\n${formatTraffic(traffic)}`);
    }
    if (runs('failover')) await failoverPhase(f, load, conn.last.perHub);
  } finally {
    await load.stop();
    loads.delete(load);
  }
}

/** CPU seconds so far of the NATS servers, and of the load generators (workers + this process). */
function otherCpu(f: ClusterFleet, load: ClusterLoad): { nats: number; loadgen: number } {
  const u = process.cpuUsage();
  return {
    nats: f.natsPids().reduce((s, pid) => s + (cpuSeconds(pid) || 0), 0),
    loadgen: load.pids.reduce((s, pid) => s + (cpuSeconds(pid) || 0), 0) + (u.user + u.system) / 1e6,
  };
}

async function failoverPhase(f: ClusterFleet, load: ClusterLoad, perHub: number[]): Promise<void> {
  // Each survivor takes about half of the dead hub's agents, one descriptor each.
  const need = Math.ceil(N / (HUBS - 1)) + 512;
  if (need > NOFILE_HARD) {
    notes.push(`failover not run: after a hub dies each survivor would hold about ${Math.ceil(N / (HUBS - 1))} agents, one descriptor each (~${need} with the hub's own), above the hard limit here (${NOFILE_HARD}); run it where \`ulimit -Hn\` is higher, or with fewer agents`);
    return;
  }
  const victim = 1;
  const r = await failover({ fleet: f, load, victim, asker: 0, n: N, jobMs: JOB_MS, limitS: Math.max(120, N / 100), log, otherCpu: () => otherCpu(f, load) });
  M_['failover_victim_agents'] = perHub[victim]!;
  M_['failover_back99_s'] = r.back99S;
  M_['failover_back_all_s'] = r.backAllS;
  M_['failover_listed99_s'] = r.listed99S;
  M_['failover_list_p50_ms'] = p(r.listMs, 50);
  M_['failover_list_max_ms'] = r.listMs.length ? Math.max(...r.listMs) : NaN;
  M_['failover_killed_after_s'] = r.killedAfterS;
  M_['failover_accepted'] = r.check.accepted;
  M_['failover_jobs_lost'] = r.check.lost.length;
  M_['failover_jobs_started_twice'] = r.check.duplicateStarts;
  M_['failover_jobs_ran_not_recorded'] = r.check.ranNotRecorded.length;
  M_['failover_views_differ'] = r.check.disagreements.length;
  M_['failover_interrupted'] = r.check.byState['interrupted'] ?? 0;
  extras['failoverSurvivorCpuS'] = r.survivorCpuS;
  extras['failoverStormCpuS'] = r.stormCpuS;
  extras['failoverCheck'] = { ...r.check, lost: r.check.lost.slice(0, 20), ranNotRecorded: r.check.ranNotRecorded.slice(0, 20), disagreements: r.check.disagreements.slice(0, 20) };
  complete['failover'] = Number.isFinite(r.back99S);
  const c = r.stormCpuS;
  log(`failover: 99 % of ${r.victimAgents} back after ${r.back99S.toFixed(1)} s (all ${r.backAllS.toFixed(1)} s; list ${r.listed99S.toFixed(1)} s); CPU until 99 %: survivors ${c.survivors.map((x) => x.toFixed(1)).join('/')} s, NATS ${c.nats.toFixed(1)} s, load generators ${c.loadgen.toFixed(1)} s; ${checkText(r.check)}`);
}
