// The first three measured phases, the same for the hub and for the floor
// server (floor.ts): connect all N agents, memory per connected host, idle
// CPU. Results go under `p` + the metric name ('' for the hub, 'floor_' for
// the floor), so both sit side by side in one run's results.
import type { ToWorker } from './ipc.js';
import { memOf, threadCpu, round, type MemSample } from './metrics.js';
import { recordCpu, snap } from './cpu.js';
import { CONNECT_LIMIT_S, HEARTBEAT_MS, IDLE_S, N, quick, runs } from './options.js';
import { allStats, waitReady } from './pool.js';
import { M_, complete, extras, handles, log, notes, sleep } from './state.js';

/** Every worker connects its agents; time, rate and server CPU per handshake. Throws when not all made it. */
export async function connectAll(pid: number, p: string, serverLog: () => string): Promise<void> {
  const c0 = snap(pid);
  for (const h of handles) h.child.send({ t: 'connect' } satisfies ToWorker);
  log(`${p}connecting ${N} agents`);
  const conn = await waitReady(`${p}connect`, N, CONNECT_LIMIT_S);
  recordCpu(`${p}connect`, c0, snap(pid));
  const cpu = M_[`${p}connect_hub_user_s`]! + M_[`${p}connect_hub_sys_s`]!;
  M_[`${p}connect_all_s`] = conn.seconds;
  M_[`${p}connect_rate_per_s`] = conn.last.ready / conn.seconds;
  M_[`${p}connect_hub_cpu_s`] = cpu;
  M_[`${p}connect_hub_cpu_ms_per_handshake`] = (cpu * 1000) / Math.max(1, conn.last.ready);
  if (p === '') complete['connect'] = conn.ok;
  if (!conn.ok) {
    notes.push(`${p}connect: only ${conn.last.ready}/${N} within ${CONNECT_LIMIT_S} s`);
    throw new Error(`${p}connect phase incomplete: ${conn.last.ready}/${N} (last error: ${conn.last.lastError})\n${serverLog().slice(-3000)}`);
  }
  log(`${p}all ${N} connected in ${conn.seconds.toFixed(1)} s (server ${cpu.toFixed(1)} CPU s, load generator ${M_[`${p}connect_loadgen_cpu_s`]!.toFixed(1)} CPU s, machine ${M_[`${p}connect_machine_busy_cores`]!.toFixed(2)} cores busy)`);
}

/** RSS and PSS per connected host against the baseline taken before the agents came. */
export async function memoryPerHost(pid: number, base: MemSample, p: string): Promise<void> {
  await sleep(quick ? 1000 : 5000);
  const connected = memOf(pid);
  M_[`${p}hub_rss_connected_mib`] = connected.rssKiB / 1024;
  M_[`${p}hub_rss_per_host_kib`] = (connected.rssKiB - base.rssKiB) / N;
  M_[`${p}hub_pss_per_host_kib`] = (connected.pssKiB - base.pssKiB) / N;
}

/** CPU over IDLE_S seconds with every agent connected and keeping alive; RSS per host after it. */
export async function idleWindow(pid: number, base: MemSample, p: string): Promise<void> {
  if (!runs('idle')) return;
  const hb0 = await allStats();
  const i0 = snap(pid);
  const th0 = threadCpu(pid);
  log(`${p}idle window ${IDLE_S} s (heartbeats or SSH keepalives every ${HEARTBEAT_MS} ms)`);
  await sleep(IDLE_S * 1000);
  const i1 = snap(pid);
  const th1 = threadCpu(pid);
  extras[`${p}idleHubCpuByThread`] = Object.fromEntries(Object.entries(th1).map(([k, v]) => [k, round(v - (th0[k] ?? 0), 2)]).filter(([, v]) => (v as number) > 0));
  const hb1 = await allStats();
  recordCpu(`${p}idle`, i0, i1);
  const wall = (i1.t - i0.t) / 1000;
  const cpu = M_[`${p}idle_hub_user_s`]! + M_[`${p}idle_hub_sys_s`]!;
  const trips = hb1.heartbeatsEchoed - hb0.heartbeatsEchoed;
  M_[`${p}idle_cpu_pct_core`] = (cpu / wall) * 100;
  M_[`${p}idle_heartbeats_per_s`] = trips / wall;
  M_[`${p}idle_hub_cpu_us_per_heartbeat`] = (cpu * 1e6) / Math.max(1, trips);
  const after = memOf(pid);
  M_[`${p}hub_rss_after_idle_mib`] = after.rssKiB / 1024;
  M_[`${p}hub_rss_per_host_after_idle_kib`] = (after.rssKiB - base.rssKiB) / N;
  if (hb1.ready < N) notes.push(`${p}idle: ${N - hb1.ready} agents dropped during the idle window`);
  log(`${p}idle: ${M_[`${p}idle_cpu_pct_core`]!.toFixed(2)}% of a core, ${M_[`${p}idle_heartbeats_per_s`]!.toFixed(0)} liveness round trips/s answered; RSS ${(after.rssKiB / 1024).toFixed(0)} MiB; machine ${M_[`${p}idle_machine_busy_cores`]!.toFixed(2)} cores busy`);
}
