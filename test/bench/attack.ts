// The attack phase (issue 13 part 1): does a flood of unauthenticated
// connections keep legitimate agents out? With ATTACK_N connections that send
// "SSH-2.0-x" and stall (each reopened a second after the hub cuts it), held
// from one address (127.0.0.1) and then from ATTACK_SOURCES addresses
// (127.0.0.2-...), a legitimate agent from 127.0.0.60 connects PROBES times;
// then the reconnect storm runs again with the flood from many addresses
// going on, to compare with the storm without it. The attacker runs in its
// own process (attack-worker.ts).
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttackFromWorker, AttackToWorker, AgentSpec } from './ipc.js';
import { addProbeHost, type Fleet, type HubProcess } from './hub.js';
import { percentile } from './metrics.js';
import { ATTACK_N, ATTACK_SOURCES, PROBES, quick } from './options.js';
import { phaseStorm } from './phases.js';
import { probeConnect } from './probe.js';
import { M_, log, notes, sleep, workers } from './state.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PROBE_SOURCE = '127.0.0.60';
/** The real agent's default connect timeout (client/config.ts). */
const AGENT_TIMEOUT_MS = 20_000;
/** Time for a flood to take hold before measuring (shorter in the --quick smoke run). */
const SETTLE_MS = quick ? 300 : 1000;

function ask(w: ChildProcess, m: AttackToWorker, want: AttackFromWorker['t'], timeoutMs = 30_000): Promise<AttackFromWorker> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { w.off('message', on); reject(new Error(`attack worker: no ${want} within ${timeoutMs} ms`)); }, timeoutMs);
    const on = (r: AttackFromWorker): void => {
      if (r.t !== want) return;
      clearTimeout(t);
      w.off('message', on);
      resolve(r);
    };
    w.on('message', on);
    w.send(m);
  });
}

/** PROBES sequential connects of the probe agent; p50 and max in ms, failures noted. */
async function probes(fleet: Fleet, agent: AgentSpec, label: string): Promise<void> {
  const ms: number[] = [];
  let failed = 0;
  for (let i = 0; i < PROBES; i++) {
    try {
      ms.push(await probeConnect({ port: fleet.port, localAddress: PROBE_SOURCE, agent, timeoutMs: AGENT_TIMEOUT_MS }));
    } catch (err) {
      failed++;
      notes.push(`${label}: probe connect ${i + 1} failed: ${(err as Error).message}`);
    }
    await sleep(200);
  }
  M_[`${label}_connect_p50_ms`] = ms.length ? percentile(ms, 50) : AGENT_TIMEOUT_MS;
  M_[`${label}_connect_max_ms`] = ms.length ? Math.max(...ms) : AGENT_TIMEOUT_MS;
  M_[`${label}_connect_failed`] = failed;
  log(`${label}: legitimate agent connected in p50 ${M_[`${label}_connect_p50_ms`]!.toFixed(0)} ms, max ${M_[`${label}_connect_max_ms`]!.toFixed(0)} ms (${failed} of ${PROBES} failed)`);
}

function sourcesFrom(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${2 + i}`);
}

export async function phaseAttack(fleet: Fleet, hub: HubProcess, nodeArgs: string[]): Promise<HubProcess> {
  const agent = await addProbeHost(fleet);
  const w = fork(path.join(here, 'attack-worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  workers.push(w); // killed with the load generator on exit, and counted as load-generator CPU
  try {
    await sleep(SETTLE_MS / 2); // the hub re-reads registry.json at the probe's login
    await probes(fleet, agent, 'attack_none');
    const cases: Array<[string, string[]]> = [['attack_one', ['127.0.0.1']], ['attack_many', sourcesFrom(ATTACK_SOURCES)]];
    for (const [label, sources] of cases) {
      log(`${label}: ${ATTACK_N} connections that send "SSH-2.0-x" and stall, from ${sources.length} address(es)`);
      const started = await ask(w, { t: 'attack', port: fleet.port, sources, count: ATTACK_N, mode: 'ssh-stall' }, 'attacking');
      await sleep(SETTLE_MS);
      await probes(fleet, agent, label);
      const st = await ask(w, { t: 'attack-stats' }, 'attack-stats');
      M_[`${label}_held_at_start`] = started.t === 'attacking' ? started.open : NaN;
      M_[`${label}_connects`] = st.t === 'attack-stats' ? st.connects : NaN;
      await ask(w, { t: 'calm' }, 'calm');
      await sleep(SETTLE_MS / 2);
    }
    log(`storm_attack: the reconnect storm again, with ${ATTACK_N} stalling connections from ${ATTACK_SOURCES} addresses`);
    await ask(w, { t: 'attack', port: fleet.port, sources: sourcesFrom(ATTACK_SOURCES), count: ATTACK_N, mode: 'ssh-stall' }, 'attacking');
    await sleep(SETTLE_MS);
    const next = await phaseStorm(fleet, hub, nodeArgs, 'storm_attack');
    const st = await ask(w, { t: 'attack-stats' }, 'attack-stats');
    M_['storm_attack_connects'] = st.t === 'attack-stats' ? st.connects : NaN;
    await ask(w, { t: 'calm' }, 'calm');
    M_['storm_attack_ratio'] = M_['storm_attack_converged_s']! / M_['storm_converged_s']!;
    M_['storm_attack_agents_ratio'] = M_['storm_attack_agents_back_s']! / M_['storm_agents_back_s']!;
    return next;
  } finally {
    w.kill('SIGTERM');
  }
}
