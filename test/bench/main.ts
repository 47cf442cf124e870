// `npm run bench`: one real hub, N simulated agents on loopback, and Debian's
// OpenSSH side by side. See docs/performance.md for the method and results.
//
//   node dist/test/bench/main.js [--clients N] [--json FILE] [--quick] [options]
//
// Phases: fleet setup -> floor (the same agents and measurements against a
// bare ssh2 server, floor.ts) -> hub start (baseline) -> connect N -> idle window ->
// sequential trigger latency -> fan-out to all -> reconnect storm (SIGKILL +
// restart) -> attack (legitimate connects and a second storm under a flood of
// stalled handshakes) -> compromised host (one host's key inventing jobs: hub
// memory and other hosts' trigger latency) -> OpenSSH tunnels and `ssh host true`. Every phase is bounded in
// time; every process started here is killed on exit, failure or Ctrl-C.
//
// Modules: options.ts (flags), state.ts (shared results, workers, log),
// pool.ts (load-generator workers), cpu.ts (CPU snapshots), floor.ts (with
// floor-server.ts), steady.ts (connect, memory, idle), phases.ts (poll,
// triggers, fan-out, storm), attack.ts (with attack-worker.ts, probe.ts),
// compromised.ts (with compromised-worker.ts),
// report.ts (table and JSON). This file starts and
// cleans up the run and holds its sequence.

// First: --help and invalid flags exit here, before anything is started.
import {
  argv, HEARTBEAT_MS, HUBS, IDLE_S, IN_FLIGHT, M, N, NOFILE, quick, runs, SSH_TRUE, TOTAL_LIMIT_S, TRIGGERS, W, WARMUP_TRIGGERS,
} from './options.js';
import { killClusterSync, runCluster } from './cluster-main.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  deployOne, hostName, killAllHubs, killHub, listCount, makeFleet, ping, startHubProcess,
  type Fleet, type HubProcess,
} from './hub.js';
import { memOf } from './metrics.js';
import { killOpenSshSync, openSshAvailable, runOpenSsh, type OpenSshResult } from './openssh.js';
import { recordCpu, snap } from './cpu.js';
import { phaseFanout, phasePoll, phaseStorm, phaseTriggers } from './phases.js';
import { phaseAttack } from './attack.js';
import { phaseCompromised } from './compromised.js';
import { allStats, startWorkers, stopWorkers } from './pool.js';
import { phaseFloor } from './floor.js';
import { heapSnapshotArgs, takeHeapSnapshot } from './heap-snap.js';
import { connectAll, idleWindow, memoryPerHost } from './steady.js';
import { report } from './report.js';
import { M_, extras, log, notes, run, sleep, workers } from './state.js';

// ---------------------------------------------------------------- cleanup
function cleanupSync(): void {
  killClusterSync();
  for (const w of workers) {
    try { w.kill('SIGKILL'); } catch { /* gone */ }
  }
  killAllHubs();
  killOpenSshSync();
  if (run.baseDir && !argv.keep && !argv['hub-logs']) {
    try { rmSync(run.baseDir, { recursive: true, force: true }); } catch { /* best effort */ }
  } else if (run.baseDir) process.stderr.write(`[bench] kept ${run.baseDir}\n`);
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping everything`);
    process.exit(130);
  });
}
const watchdog = setTimeout(() => {
  log(`bench exceeded its ${TOTAL_LIMIT_S} s limit; aborting`);
  process.exit(3);
}, TOTAL_LIMIT_S * 1000);
watchdog.unref();

async function waitAdmin(fleet: Fleet, hub: HubProcess, limitS: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await ping(fleet.socket)) return (performance.now() - t0) / 1000;
    if (hub.child.exitCode !== null) throw new Error(`hub exited during start:\n${hub.output()}`);
    if ((performance.now() - t0) / 1000 > limitS) throw new Error(`hub admin socket did not answer within ${limitS} s:\n${hub.output()}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  const nodeArgs = argv['hub-cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(argv['hub-cpu-prof'])] : [];
  // For experiments only: extra node flags for the hub (e.g. --require a preload).
  if (process.env['BENCH_HUB_NODE_ARGS']) nodeArgs.push(...process.env['BENCH_HUB_NODE_ARGS'].split(' ').filter(Boolean));
  const heapDir = argv['heap-snapshots'] ? path.resolve(argv['heap-snapshots']) : '';
  if (heapDir) { mkdirSync(heapDir, { recursive: true }); nodeArgs.push(...heapSnapshotArgs(heapDir)); }
  // --hubs H: the cluster bench instead (cluster-main.ts).
  if (HUBS > 1) return runCluster(nodeArgs);
  run.baseDir = mkdtempSync(path.join(argv.base ? path.resolve(argv.base) : os.tmpdir(), 'bento-bench-'));
  const fleetDir = path.join(run.baseDir, 'fleet');
  try { run.fsType = execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', run.baseDir]).toString().trim().split('\n')[0]!; } catch { /* informational */ }
  const port = await new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
  extras['loadavgAtStart'] = os.loadavg();
  log(`N=${N} workers=${W} in-flight=${IN_FLIGHT} heartbeatMs=${HEARTBEAT_MS} idle=${IDLE_S}s triggers=${TRIGGERS} fleet dir on ${run.fsType}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const tKeys = performance.now();
  const fleet = await makeFleet(fleetDir, port, N, HEARTBEAT_MS);
  log(`fleet with ${N} hosts ready in ${((performance.now() - tKeys) / 1000).toFixed(1)} s`);
  let publishedHash = '';
  if (runs('poll')) {
    try {
      publishedHash = await deployOne(fleet, hostName(0));
    } catch (err) {
      notes.push(`poll: could not publish a configuration for ${hostName(0)}: ${(err as Error).message}`);
    }
  }

  // -- the floor: the same agents against a bare ssh2 server first (floor.ts)
  await startWorkers(fleet);
  if (runs('floor')) {
    log('floor: a bare ssh2 server with the hub\'s SSH settings, the same agents and measurements');
    await phaseFloor(fleet, nodeArgs, heapDir);
  }

  let hub = startHubProcess(fleet, NOFILE, nodeArgs);
  M_['hub_start_s'] = await waitAdmin(fleet, hub, 60);
  await sleep(1000);
  const base = memOf(hub.pid);
  M_['hub_rss_baseline_mib'] = base.rssKiB / 1024;
  if (heapDir) log(`heap snapshot ${await takeHeapSnapshot({ pid: hub.pid, socket: fleet.socket, dir: heapDir, label: 'hub-0' })}`);

  // -- connect all N, memory, idle CPU
  await connectAll(hub.pid, '', hub.output);
  const listed = await listCount(fleet.socket, 30_000);
  if (listed.count !== N) notes.push(`after connect, list reported ${listed.count} (expected ${N})`);
  M_['list_full_ms'] = listed.ms;
  log(`list of ${listed.count} took ${listed.ms.toFixed(0)} ms`);
  await memoryPerHost(hub.pid, base, '');
  if (heapDir) log(`heap snapshot ${await takeHeapSnapshot({ pid: hub.pid, socket: fleet.socket, dir: heapDir, label: 'hub-N' })}`);
  await idleWindow(hub.pid, base, '');

  // -- no-change poll
  if (runs('poll') && publishedHash) {
    await phasePoll(fleet, publishedHash);
    log(`no-change poll: ${M_['poll_tunnel_bytes']} bytes over the tunnel (${M_['poll_tunnel_bytes_out']} out / ${M_['poll_tunnel_bytes_in']} in, ${M_['poll_tunnel_ms']!.toFixed(1)} ms); ${M_['poll_fresh_bytes']} bytes over a fresh connection (${M_['poll_fresh_ms']!.toFixed(0)} ms)`);
  }

  // -- trigger-to-start latency
  if (runs('triggers')) {
    log(`trigger latency: ${WARMUP_TRIGGERS} warm-up + ${TRIGGERS} sequential triggers of ${hostName(0)}`);
    const t0 = snap(hub.pid);
    await phaseTriggers(fleet);
    recordCpu('triggers', t0, snap(hub.pid));
    log(`trigger-to-start p50 ${M_['trigger_to_start_p50_ms']!.toFixed(2)} ms, p99 ${M_['trigger_to_start_p99_ms']!.toFixed(2)} ms (accepted p50 ${M_['trigger_to_accepted_p50_ms']!.toFixed(2)} ms)`);
  }

  // -- fan-out
  if (runs('fanout')) {
    log(`fan-out: trigger all ${N}`);
    const f0 = snap(hub.pid);
    await phaseFanout(fleet, hub);
    recordCpu('fanout', f0, snap(hub.pid));
    log(`fan-out: last accepted after ${M_['fanout_last_accepted_s']!.toFixed(2)} s, all acknowledged at the agents after ${M_['fanout_all_acked_s']!.toFixed(2)} s (hub CPU ${M_['fanout_hub_cpu_s']!.toFixed(1)} s)`);
  }

  // -- reconnect storm
  if (runs('storm')) {
    hub = await phaseStorm(fleet, hub, nodeArgs);
    log(`storm: ${N} back in ${M_['storm_converged_s']!.toFixed(1)} s by list (agents' view ${M_['storm_agents_back_s']!.toFixed(1)} s; admin up after ${M_['storm_hub_admin_up_s']!.toFixed(2)} s, ${M_['storm_hub_startup_cpu_s']!.toFixed(1)} CPU s), hub CPU ${M_['storm_hub_cpu_s']!.toFixed(1)} s (${M_['storm_hub_cpu_ms_per_reconnect']!.toFixed(2)} ms per reconnect); list max ${M_['storm_list_max_ms']!.toFixed(0)} ms`);
  }

  // -- attack: legitimate connects and the storm under a flood of stalled handshakes
  if (runs('attack')) {
    hub = await phaseAttack(fleet, hub, nodeArgs);
    log(`storm under attack: ${N} back in ${M_['storm_attack_converged_s']!.toFixed(1)} s by list (agents' view ${M_['storm_attack_agents_back_s']!.toFixed(1)} s): ${M_['storm_attack_ratio']!.toFixed(2)}x the storm without it`);
  }

  // -- compromised host: one host's key inventing jobs
  if (runs('compromised')) {
    await phaseCompromised(fleet, hub);
  }

  const final = await allStats();
  extras['agentStats'] = final;
  await stopWorkers();
  await killHub(hub, 'SIGTERM');
  const hubLog = hub.output();
  if (hubLog.trim()) extras['hubLogTail'] = hubLog.slice(-4000);

  // -- OpenSSH side by side
  let ossh: OpenSshResult | null = null;
  const why = !runs('openssh') ? 'skipped' : openSshAvailable();
  if (why) {
    notes.push(`OpenSSH comparison not run: ${why}`);
  } else {
    log(`OpenSSH: ${M} reverse tunnels + ${SSH_TRUE} fresh \`ssh host true\``);
    ossh = await runOpenSsh({ dir: run.baseDir, tunnels: M, sshTrueRuns: SSH_TRUE, inFlight: 8, deadlineMs: quick ? 40_000 : 180_000, log });
    M_['openssh_tunnels'] = ossh.tunnels;
    M_['openssh_processes'] = ossh.processes;
    M_['openssh_handshakes_per_s'] = ossh.handshakesPerSecond;
    M_['openssh_pss_per_tunnel_kib'] = ossh.pssPerTunnelKiB;
    M_['openssh_rss_per_tunnel_kib'] = ossh.rssPerTunnelKiB;
    M_['ssh_true_runs'] = ossh.sshTrueRuns;
    M_['ssh_true_p50_ms'] = ossh.sshTrueP50Ms;
    M_['ssh_true_p99_ms'] = ossh.sshTrueP99Ms;
    M_['ratio_memory_openssh_pss_over_bento_rss'] = ossh.pssPerTunnelKiB / M_['hub_rss_per_host_kib']!;
    M_['ratio_memory_openssh_pss_over_bento_pss'] = ossh.pssPerTunnelKiB / M_['hub_pss_per_host_kib']!;
    if (runs('triggers')) {
      M_['ratio_push_p50_ssh_true_over_trigger'] = ossh.sshTrueP50Ms / M_['trigger_to_start_p50_ms']!;
      M_['ratio_push_p99_ssh_true_over_trigger'] = ossh.sshTrueP99Ms / M_['trigger_to_start_p99_ms']!;
    }
    if (ossh.tunnels < M) notes.push(`OpenSSH: only ${ossh.tunnels}/${M} tunnels came up`);
  }
  extras['loadavgAtEnd'] = os.loadavg();
  report(ossh);
}

main().then(
  () => { clearTimeout(watchdog); cleanupSync(); process.exit(0); },
  (err: Error) => {
    log(`FAILED: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
