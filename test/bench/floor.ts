// The floor phase: before the hub starts, the same agents connect to a bare
// ssh2 server with the hub's SSH settings (floor-server.ts) on the same port,
// and the same code measures connect, memory per host, idle CPU, sequential
// push latency and fan-out there (results under floor_*). Then every agent
// disconnects and the hub's phases run. report.ts prints each Bento figure
// as a ratio to its floor, so the machine's load on that day weighs on both.
import type { FromWorker } from './ipc.js';
import { killHub, ping, startFloorProcess, type Fleet } from './hub.js';
import { takeHeapSnapshot } from './heap-snap.js';
import { memOf } from './metrics.js';
import { recordCpu, snap } from './cpu.js';
import { HEARTBEAT_MS, N, NOFILE, runs } from './options.js';
import { phaseFanout, phaseTriggers } from './phases.js';
import { request } from './pool.js';
import { connectAll, idleWindow, memoryPerHost } from './steady.js';
import { M_, handles, log, notes, sleep } from './state.js';

const P = 'floor_';

/** `heapDir`: where to write heap snapshots with 0 and N agents (heap-snap.ts); '' for none. */
export async function phaseFloor(fleet: Fleet, nodeArgs: string[], heapDir = ''): Promise<void> {
  const floor = startFloorProcess(fleet, NOFILE, HEARTBEAT_MS, nodeArgs);
  try {
    const t0 = performance.now();
    while (!(await ping(fleet.socket))) {
      if (floor.child.exitCode !== null) throw new Error(`floor server exited at start:\n${floor.output()}`);
      if (performance.now() - t0 > 30_000) throw new Error(`floor server did not answer within 30 s:\n${floor.output()}`);
      await sleep(50);
    }
    await sleep(1000);
    const base = memOf(floor.pid);
    M_[`${P}hub_rss_baseline_mib`] = base.rssKiB / 1024;
    const snapshot = async (label: string): Promise<void> => {
      if (heapDir) log(`heap snapshot ${await takeHeapSnapshot({ pid: floor.pid, socket: fleet.socket, dir: heapDir, label })}`);
    };
    await snapshot('floor-0');
    await connectAll(floor.pid, P, floor.output);
    await memoryPerHost(floor.pid, base, P);
    await snapshot('floor-N');
    await idleWindow(floor.pid, base, P);
    if (runs('triggers')) {
      const t = snap(floor.pid);
      await phaseTriggers(fleet, P);
      recordCpu(`${P}triggers`, t, snap(floor.pid));
      log(`floor: push p50 ${M_[`${P}trigger_to_start_p50_ms`]!.toFixed(2)} ms, p99 ${M_[`${P}trigger_to_start_p99_ms`]!.toFixed(2)} ms`);
    }
    if (runs('fanout')) {
      const f = snap(floor.pid);
      await phaseFanout(fleet, floor, P);
      recordCpu(`${P}fanout`, f, snap(floor.pid));
      log(`floor: fan-out to ${N}, all acknowledged after ${M_[`${P}fanout_all_acked_s`]!.toFixed(2)} s (server CPU ${M_[`${P}fanout_hub_cpu_s`]!.toFixed(2)} s)`);
    }
  } finally {
    const left = await Promise.all(handles.map((h) => request(h, { t: 'disconnect' }, 'disconnected', 40_000)));
    const still = left.reduce((n, m) => n + (m as Extract<FromWorker, { t: 'disconnected' }>).ready, 0);
    if (still) notes.push(`floor: ${still} agents were still connected 30 s after the disconnect`);
    await killHub(floor, 'SIGTERM');
  }
}

/** Bento's figure over the floor's, when both were measured. */
export function ratioToFloor(key: string): number {
  const bento = M_[key];
  const floor = M_[`${P}${key}`];
  return bento === undefined || floor === undefined ? NaN : bento / floor;
}
