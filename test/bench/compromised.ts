// The compromised-host phase (issue 13 part 2): one host's key in an
// attacker's hands. The attacker (compromised-worker.ts, its own process)
// sends job.started / 256 KiB of job.output / job.end for up to COMPROMISED_JOBS
// jobs it invents, as fast as the hub lets it. Measured: the hub's RSS peak
// against its RSS just before (target: below baseline + 64 MiB), and
// trigger-to-start of another host without the attack and under it (target:
// p99 within twice the unattacked). The two are measured in alternating
// rounds (ROUNDS x TRIGGERS_PER_ROUND each), so that the machine's own load,
// which moves a p99 more than anything here (other helpers share it), weighs
// on both alike; a calm round starts once what the attacker had in flight
// has reached the hub.
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CompromisedFromWorker, CompromisedToWorker } from './ipc.js';
import { addProbeHost, hostName, type Fleet, type HubProcess } from './hub.js';
import { memOf, percentile } from './metrics.js';
import { COMPROMISED_JOBS, quick } from './options.js';
import { timeTriggers } from './phases.js';
import { M_, log, notes, sleep, workers } from './state.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROUNDS = quick ? 1 : 3;
const TRIGGERS_PER_ROUND = quick ? 20 : 100;
const ROUND_LIMIT_S = 30;
/** After the attacker pauses: its window and buffers (a few MiB) drain at the hub's rate for it. */
const SETTLE_S = quick ? 1 : 6;
/** After it resumes: the flood is on again before the triggers. */
const WARM_S = quick ? 1 : 2;

export async function phaseCompromised(fleet: Fleet, hub: HubProcess): Promise<void> {
  const agent = await addProbeHost(fleet, 'evil');
  const target = hostName(1 % Math.max(1, fleet.agents.length));
  await sleep(1000); // the hub re-reads registry.json at evil's login
  const baseline = memOf(hub.pid).rssKiB;
  const w = fork(path.join(here, 'compromised-worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  workers.push(w); // killed with the load generator on exit, and counted as load-generator CPU
  let last: Extract<CompromisedFromWorker, { t: 'progress' }> | null = null;
  let failed = '';
  w.on('message', (m: CompromisedFromWorker) => {
    if (m.t === 'progress') last = m;
    else if (m.t === 'failed') failed = m.error;
  });
  let peak = baseline;
  const sampler = setInterval(() => { peak = Math.max(peak, memOf(hub.pid).rssKiB || 0); }, 100);
  const calm: number[] = [];
  const attacked: number[] = [];
  let short = 0;
  try {
    w.send({ t: 'start', port: fleet.port, agent, jobs: COMPROMISED_JOBS, outputBytes: 256 * 1024 } satisfies CompromisedToWorker);
    w.send({ t: 'pause' } satisfies CompromisedToWorker);
    const t0 = performance.now();
    log(`compromised: "evil" floods the hub with invented jobs; ${ROUNDS} rounds of ${TRIGGERS_PER_ROUND} triggers of ${target} without and with it`);
    for (let r = 0; r < ROUNDS; r++) {
      await sleep(SETTLE_S * 1000);
      const c = await timeTriggers(fleet, target, TRIGGERS_PER_ROUND, ROUND_LIMIT_S);
      w.send({ t: 'resume' } satisfies CompromisedToWorker);
      await sleep(WARM_S * 1000);
      const a = await timeTriggers(fleet, target, TRIGGERS_PER_ROUND, ROUND_LIMIT_S);
      w.send({ t: 'pause' } satisfies CompromisedToWorker);
      calm.push(...c.started);
      attacked.push(...a.started);
      if (c.stoppedAt !== null || a.stoppedAt !== null) short++;
    }
    peak = Math.max(peak, memOf(hub.pid).rssKiB || 0);
    const p = last as Extract<CompromisedFromWorker, { t: 'progress' }> | null;
    M_['compromised_attack_s'] = (performance.now() - t0) / 1000;
    M_['compromised_jobs_sent'] = p?.jobs ?? 0;
    M_['compromised_mib_sent'] = (p?.bytes ?? 0) / 2 ** 20;
    M_['compromised_acks'] = p?.acks ?? 0;
    M_['compromised_rss_baseline_mib'] = baseline / 1024;
    M_['compromised_rss_peak_mib'] = peak / 1024;
    M_['compromised_rss_growth_mib'] = (peak - baseline) / 1024;
    M_['compromised_trigger_p99_calm_ms'] = percentile(calm, 99);
    M_['compromised_trigger_p50_calm_ms'] = percentile(calm, 50);
    M_['compromised_trigger_p99_ms'] = percentile(attacked, 99);
    M_['compromised_trigger_p50_ms'] = percentile(attacked, 50);
    M_['compromised_trigger_ratio'] = M_['compromised_trigger_p99_ms']! / M_['compromised_trigger_p99_calm_ms']!;
    if (short) notes.push(`compromised: ${short} rounds stopped at their ${ROUND_LIMIT_S} s limit`);
    if (failed) notes.push(`compromised: the attacker failed: ${failed}`);
    log(`compromised: ${M_['compromised_jobs_sent']} invented jobs (${M_['compromised_mib_sent']!.toFixed(0)} MiB) over ${M_['compromised_attack_s']!.toFixed(0)} s; hub RSS ${M_['compromised_rss_baseline_mib']!.toFixed(0)} -> peak ${M_['compromised_rss_peak_mib']!.toFixed(0)} MiB; trigger-to-start p99 ${M_['compromised_trigger_p99_calm_ms']!.toFixed(2)} -> ${M_['compromised_trigger_p99_ms']!.toFixed(2)} ms`);
  } finally {
    clearInterval(sampler);
    w.kill('SIGTERM');
  }
}
