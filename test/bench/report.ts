// The end of a run: the table on stdout (and Markdown with --markdown), the
// notes, and every number as JSON with --json FILE.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { renderMarkdown, renderTable, round, type Row } from './metrics.js';
import type { OpenSshResult } from './openssh.js';
import {
  argv, ATTACK_N, ATTACK_SOURCES, BACKOFF, COMPROMISED_JOBS, HEARTBEAT_MS, IDLE_S, IN_FLIGHT, M, N, PROBES, quick, SSH_TRUE, STORM_IN_FLIGHT, TRIGGERS, W, WARMUP_TRIGGERS,
} from './options.js';
import { M_, complete, extras, notes, run, tStart } from './state.js';

function fmt(v: number | undefined, digits = 2, unit = ''): string {
  return v === undefined || !Number.isFinite(v) ? 'n/a' : `${v.toFixed(digits)}${unit}`;
}

function verdict(ok: boolean | undefined): 'ok' | 'MISS' | '' {
  return ok === undefined ? '' : ok ? 'ok' : 'MISS';
}

/** Verdict for `value OP limit`; no verdict when the value was not measured. */
function within(value: number | undefined, test: (v: number) => boolean, done = true): 'ok' | 'MISS' | '' {
  return value === undefined || !Number.isFinite(value) ? '' : verdict(done && test(value));
}

export function report(ossh: OpenSshResult | null): void {
  const m = M_;
  const rows: Row[] = [
    { metric: `connect all ${N} (${IN_FLIGHT} handshakes in flight)`, value: `${fmt(m['connect_all_s'], 1)} s`, target: `${N} connected`, verdict: verdict(complete['connect']) },
    { metric: '  handshake rate / hub CPU for it', value: `${fmt(m['connect_rate_per_s'], 0)}/s, ${fmt(m['connect_hub_cpu_s'], 1)} CPU s` },
    { metric: '  hub CPU per handshake', value: `${fmt(m['connect_hub_cpu_ms_per_handshake'], 2)} ms` },
    { metric: 'hub RSS idle baseline -> N connected', value: `${fmt(m['hub_rss_baseline_mib'], 0)} -> ${fmt(m['hub_rss_connected_mib'], 0)} MiB` },
    { metric: 'hub RSS per connected host', value: `${fmt(m['hub_rss_per_host_kib'], 1)} KiB`, target: '<= 40 KiB', verdict: within(m['hub_rss_per_host_kib'], (v) => v <= 40) },
    { metric: '  (PSS per host / RSS per host after idle)', value: `${fmt(m['hub_pss_per_host_kib'], 1)} / ${fmt(m['hub_rss_per_host_after_idle_kib'], 1)} KiB` },
    { metric: `idle hub CPU (${IDLE_S} s, heartbeat ${HEARTBEAT_MS / 1000} s)`, value: `${fmt(m['idle_cpu_pct_core'], 2)} % core`, target: '< 10 % core', verdict: within(m['idle_cpu_pct_core'], (v) => v < 10) },
    { metric: '  keepalive / heartbeat round trips', value: `${fmt(m['idle_heartbeats_per_s'], 0)}/s` },
    { metric: `trigger-to-start p50 (${fmt(m['trigger_count'], 0)} sequential)`, value: `${fmt(m['trigger_to_start_p50_ms'], 2)} ms` },
    { metric: 'trigger-to-start p99', value: `${fmt(m['trigger_to_start_p99_ms'], 2)} ms`, target: '< 5 ms', verdict: within(m['trigger_to_start_p99_ms'], (v) => v < 5) },
    { metric: '  (trigger-to-accepted p50 / max start)', value: `${fmt(m['trigger_to_accepted_p50_ms'], 2)} / ${fmt(m['trigger_to_start_max_ms'], 1)} ms` },
    { metric: `fan-out to ${N}, all acknowledged`, value: `${fmt(m['fanout_all_acked_s'], 2)} s`, target: '< 1 s', verdict: within(m['fanout_all_acked_s'], (v) => v < 1, complete['fanout']) },
    { metric: '  (last accepted / hub CPU)', value: `${fmt(m['fanout_last_accepted_s'], 2)} s / ${fmt(m['fanout_hub_cpu_s'], 1)} CPU s` },
    { metric: `reconnect storm, all ${N} back (${STORM_IN_FLIGHT} in flight)`, value: `${fmt(m['storm_converged_s'], 1)} s`, target: '< 60 s', verdict: within(m['storm_converged_s'], (v) => v < 60, complete['storm']) },
    { metric: '  hub restart until admin answers', value: `${fmt(m['storm_hub_admin_up_s'], 1)} s, ${fmt(m['storm_hub_startup_cpu_s'], 1)} CPU s` },
    { metric: '  hub CPU during storm / per reconnect', value: `${fmt(m['storm_hub_cpu_s'], 1)} CPU s (${fmt(m['storm_hub_cpu_pct_core'], 0)} % core) / ${fmt(m['storm_hub_cpu_ms_per_reconnect'], 2)} ms` },
    { metric: '  all back, as the agents see it', value: `${fmt(m['storm_agents_back_s'], 1)} s` },
    { metric: '  `list` during storm (max / p50)', value: `${fmt(m['storm_list_max_ms'], 0)} / ${fmt(m['storm_list_p50_ms'], 0)} ms`, target: '< 1 s', verdict: within(m['storm_list_max_ms'], (v) => v < 1000) },
    { metric: `legitimate agent connect (p50 / max of ${PROBES}), no attack`, value: `${fmt(m['attack_none_connect_p50_ms'], 0)} / ${fmt(m['attack_none_connect_max_ms'], 0)} ms` },
    { metric: `  under ${ATTACK_N} stalled handshakes from 1 address`, value: `${fmt(m['attack_one_connect_p50_ms'], 0)} / ${fmt(m['attack_one_connect_max_ms'], 0)} ms`, target: '< 5 s', verdict: within(m['attack_one_connect_max_ms'], (v) => v < 5000 && m['attack_one_connect_failed'] === 0) },
    { metric: `  under ${ATTACK_N} stalled handshakes from ${ATTACK_SOURCES} addresses`, value: `${fmt(m['attack_many_connect_p50_ms'], 0)} / ${fmt(m['attack_many_connect_max_ms'], 0)} ms`, target: '< 5 s', verdict: within(m['attack_many_connect_max_ms'], (v) => v < 5000 && m['attack_many_connect_failed'] === 0) },
    { metric: `reconnect storm under that attack (${ATTACK_SOURCES} addresses)`, value: `${fmt(m['storm_attack_converged_s'], 1)} s (${fmt(m['storm_attack_ratio'], 2)}x)`, target: '<= 2x without', verdict: within(m['storm_attack_ratio'], (v) => v <= 2, m['storm_attack_complete'] === 1) },
    { metric: '  all back, as the agents see it', value: `${fmt(m['storm_attack_agents_back_s'], 1)} s (${fmt(m['storm_attack_agents_ratio'], 2)}x)` },
    { metric: '  hub CPU during storm / `list` max', value: `${fmt(m['storm_attack_hub_cpu_s'], 1)} CPU s / ${fmt(m['storm_attack_list_max_ms'], 0)} ms` },
    { metric: `compromised host: ${fmt(m['compromised_jobs_sent'], 0)} invented jobs (${fmt(m['compromised_mib_sent'], 0)} MiB in ${fmt(m['compromised_attack_s'], 0)} s)`, value: `hub RSS +${fmt(m['compromised_rss_growth_mib'], 0)} MiB`, target: '< +64 MiB', verdict: within(m['compromised_rss_growth_mib'], (v) => v < 64) },
    { metric: '  other host trigger-to-start p99 (calm -> under it)', value: `${fmt(m['compromised_trigger_p99_calm_ms'], 2)} -> ${fmt(m['compromised_trigger_p99_ms'], 2)} ms (${fmt(m['compromised_trigger_ratio'], 2)}x)`, target: '<= 2x', verdict: within(m['compromised_trigger_ratio'], (v) => v <= 2) },
    { metric: 'no-change poll, over the tunnel', value: M_['poll_tunnel_bytes'] === undefined ? 'n/a' : `${fmt(m['poll_tunnel_bytes'], 0)} B`, target: 'SSH bytes both ways' },
    { metric: '  (out / in, ms)', value: `${fmt(m['poll_tunnel_bytes_out'], 0)} / ${fmt(m['poll_tunnel_bytes_in'], 0)} B, ${fmt(m['poll_tunnel_ms'], 1)} ms` },
    { metric: 'no-change poll, own connection (tunnel down)', value: M_['poll_fresh_bytes'] === undefined ? 'n/a' : `${fmt(m['poll_fresh_bytes'], 0)} B`, target: 'incl. SSH handshake' },
  ];
  rows.push({
    metric: 'noise: other processes (cores of 2)',
    value: ['connect', 'idle', 'triggers', 'fanout', 'storm', 'storm_attack'].map((p) => fmt(m[`${p}_other_cores`], 2)).join(' / '),
    target: 'connect/idle/trig/fan/storm/attack',
  });
  if (ossh) {
    rows.push(
      { metric: `OpenSSH sshd PSS per tunnel (M=${ossh.tunnels})`, value: `${fmt(ossh.pssPerTunnelKiB, 0)} KiB` },
      { metric: '  ratio OpenSSH PSS / Bento RSS per host', value: `${fmt(m['ratio_memory_openssh_pss_over_bento_rss'], 1)}x`, target: '>= 40x', verdict: within(m['ratio_memory_openssh_pss_over_bento_rss'], (v) => v >= 40) },
      { metric: '  OpenSSH handshakes (8 in flight)', value: `${fmt(ossh.handshakesPerSecond, 1)}/s` },
      { metric: `fresh \`ssh host true\` p50 / p99 (${ossh.sshTrueRuns} runs)`, value: `${fmt(ossh.sshTrueP50Ms, 0)} / ${fmt(ossh.sshTrueP99Ms, 0)} ms` },
      { metric: '  ratio ssh-true / Bento trigger-to-start', value: `p50 ${fmt(m['ratio_push_p50_ssh_true_over_trigger'], 0)}x, p99 ${fmt(m['ratio_push_p99_ssh_true_over_trigger'], 0)}x` },
    );
  }
  const cpus = os.cpus();
  const machine = {
    cpus: cpus.length, cpuModel: cpus[0]?.model ?? '?', memGiB: round(os.totalmem() / 2 ** 30, 1), kernel: os.release(),
    node: process.version, fleetDirFs: run.fsType,
  };
  const params = {
    clients: N, workers: W, inFlight: IN_FLIGHT, stormInFlight: STORM_IN_FLIGHT, heartbeatMs: HEARTBEAT_MS, idleSeconds: IDLE_S, triggers: TRIGGERS,
    warmupTriggers: WARMUP_TRIGGERS, agentBackoff: BACKOFF, opensshTunnels: M, sshTrueRuns: SSH_TRUE, quick,
    attackConnections: ATTACK_N, attackSources: ATTACK_SOURCES, probes: PROBES, compromisedJobs: COMPROMISED_JOBS,
  };
  const out = {
    when: new Date().toISOString(), machine, params,
    metrics: Object.fromEntries(Object.entries(M_).map(([k, v]) => [k, round(v, 3)])),
    complete,
    notMeasured: M_['poll_tunnel_bytes'] === undefined ? { noChangePollBytes: 'n/a: the poll phase did not run (see notes)' } : {},
    notes,
    totalSeconds: round((performance.now() - tStart) / 1000, 1),
    extras,
  };
  process.stdout.write(`\nBento bench: ${N} agents, ${machine.cpus} cores (${machine.cpuModel}), node ${machine.node}, fleet dir on ${run.fsType}\n\n`);
  process.stdout.write(`${renderTable(rows)}\n`);
  if (notes.length) process.stdout.write(`\nnotes:\n${notes.map((n) => `  - ${n}`).join('\n')}\n`);
  if (argv.markdown) process.stdout.write(`\n${renderMarkdown(rows)}\n`);
  if (argv.json) writeFileSync(argv.json, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`\ntotal ${out.totalSeconds} s\n`);
}
