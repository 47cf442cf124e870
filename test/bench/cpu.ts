// CPU snapshots around a phase, recorded into the results as
// `<phase>_hub_user_s`, `<phase>_loadgen_cpu_s`, `<phase>_other_cores`, ...
import { cpuSeconds, cpuSplit, machineBusySeconds } from './metrics.js';
import { M_, workers } from './state.js';

/** CPU accounting over a window: the hub, the load generator (workers + this process), the whole machine. */
export interface Snap { t: number; hubUser: number; hubSys: number; loadgen: number; machine: number }
export function snap(hubPid: number): Snap {
  const h = cpuSplit(hubPid);
  let loadgen = 0;
  for (const w of workers) if (w.pid !== undefined && w.exitCode === null) loadgen += cpuSeconds(w.pid) || 0;
  const u = process.cpuUsage();
  return { t: performance.now(), hubUser: h.user, hubSys: h.sys, loadgen: loadgen + (u.user + u.system) / 1e6, machine: machineBusySeconds() };
}
export function recordCpu(prefix: string, a: Snap, b: Snap): void {
  const wall = (b.t - a.t) / 1000;
  const hub = b.hubUser - a.hubUser + (b.hubSys - a.hubSys);
  M_[`${prefix}_hub_user_s`] = b.hubUser - a.hubUser;
  M_[`${prefix}_hub_sys_s`] = b.hubSys - a.hubSys;
  M_[`${prefix}_loadgen_cpu_s`] = b.loadgen - a.loadgen;
  M_[`${prefix}_machine_busy_cores`] = (b.machine - a.machine) / wall;
  // Everything else that ran meanwhile: other processes on the machine, interrupts.
  M_[`${prefix}_other_cpu_s`] = b.machine - a.machine - hub - (b.loadgen - a.loadgen);
  M_[`${prefix}_other_cores`] = M_[`${prefix}_other_cpu_s`]! / wall;
}
