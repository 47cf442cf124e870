// The end of a cluster bench run: one table, the cluster next to the single-hub
// baseline of the same run, with the targets of issue 16; the notes; every
// number as JSON with --json FILE (and Markdown with --markdown).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { round } from './metrics.js';
import { argv, HUBS, JOB_MS, N, TRIGGERS, W } from './options.js';
import { M_, complete, extras, notes, run, tStart } from './state.js';

interface Row { metric: string; single: string; cluster: string; target: string; verdict: string }

const fmt = (v: number | undefined, d = 2, unit = ''): string => (v === undefined || !Number.isFinite(v) ? 'n/a' : `${v.toFixed(d)}${unit}`);
function check(v: number | undefined, ok: (v: number) => boolean, done = true): string {
  return v === undefined || !Number.isFinite(v) ? '' : done && ok(v) ? 'ok' : 'MISS';
}

export function clusterReport(): void {
  const m = M_;
  const nb = Math.ceil(N / HUBS);
  const rows: Row[] = [
    { metric: 'agents connected', single: fmt(m['single_agents'], 0), cluster: `${fmt(m['cluster_agents'], 0)} (${((extras['agentsPerHub'] as number[] | undefined) ?? []).join('/')})`, target: `${N} on ${HUBS} hubs`, verdict: check(m['cluster_agents'], (v) => v >= N, complete['connect']) },
    { metric: '  connect all (s) / hub CPU per handshake', single: `${fmt(m['single_connect_s'], 1)} s / ${fmt(m['single_connect_hub_cpu_ms_per_handshake'])} ms`, cluster: `${fmt(m['cluster_connect_s'], 1)} s / ${fmt(m['cluster_connect_hub_cpu_ms_per_handshake'])} ms`, target: '', verdict: '' },
    { metric: 'hub RSS per host (cluster: per host it holds, worst hub)', single: `${fmt(m['single_rss_per_host_kib'], 1)} KiB`, cluster: `${fmt(m['cluster_rss_per_host_per_hub_kib'], 1)} KiB`, target: '<= 40 KiB', verdict: check(m['cluster_rss_per_host_per_hub_kib'], (v) => v <= 40) },
    { metric: '  largest hub RSS', single: '', cluster: `${fmt(m['cluster_hub_rss_max_mib'], 0)} MiB`, target: '', verdict: '' },
    { metric: 'NATS servers RSS, all 3 (idle -> connected)', single: '', cluster: `${fmt(m['nats_rss_idle_mib'], 0)} -> ${fmt(m['nats_rss_mib'], 0)} MiB (${fmt(m['nats_rss_per_host_kib'], 1)} KiB per host)`, target: '', verdict: '' },
    { metric: `trigger-to-start p50 (${TRIGGERS} sequential; cluster: at a hub not holding it)`, single: `${fmt(m['single_trigger_p50_ms'])} ms`, cluster: `${fmt(m['cluster_trigger_p50_ms'])} ms`, target: '', verdict: '' },
    { metric: 'trigger-to-start p99', single: `${fmt(m['single_trigger_p99_ms'])} ms`, cluster: `${fmt(m['cluster_trigger_p99_ms'])} ms`, target: '<= 20 ms', verdict: check(m['cluster_trigger_p99_ms'], (v) => v <= 20) },
    { metric: '`list` of every host (p50 / max of 5)', single: `${fmt(m['single_list_p50_ms'], 0)} / ${fmt(m['single_list_max_ms'], 0)} ms`, cluster: `${fmt(m['cluster_list_p50_ms'], 0)} / ${fmt(m['cluster_list_max_ms'], 0)} ms`, target: '< 1 s', verdict: check(m['cluster_list_max_ms'], (v) => v < 1000) },
    { metric: `registry edit at a hub, all ${N} hosts loaded: add-host / remove-host (CLI process)`, single: '', cluster: `${fmt(m['cluster_cli_add_host_ms'], 0)} / ${fmt(m['cluster_cli_remove_host_ms'], 0)} ms`, target: '', verdict: '' },
    { metric: `fan-out to all, every agent acknowledged (single: ${nb})`, single: `${fmt(m['single_fanout_acked_s'])} s`, cluster: `${fmt(m['cluster_fanout_acked_s'])} s`, target: '< 15 s', verdict: check(m['cluster_fanout_acked_s'], (v) => v < 15, complete['fanout']) },
    { metric: '  hub CPU for it (single / each cluster hub)', single: `${fmt(m['single_fanout_hub_cpu_s'], 1)} s`, cluster: `${((extras['fanoutHubCpuS'] as number[] | undefined) ?? []).map((x) => x.toFixed(1)).join(' / ')} s`, target: '', verdict: '' },
    { metric: '  NATS servers / load generators CPU for it', single: '', cluster: `${fmt(m['cluster_fanout_nats_cpu_s'], 1)} / ${fmt(m['cluster_fanout_loadgen_cpu_s'], 1)} s`, target: '', verdict: '' },
    { metric: '  idle, every agent connected: NATS servers / hubs CPU per second', single: '', cluster: `${fmt(m['cluster_idle_nats_cpu_per_s'])} / ${fmt(m['cluster_idle_hubs_cpu_per_s'])} s/s`, target: '', verdict: '' },
    { metric: '  replicated writes per job: job records / output', single: '', cluster: `${fmt(m['cluster_fanout_job_writes_per_job'])} / ${fmt(m['cluster_fanout_output_writes_per_job'])}`, target: '', verdict: '' },
    { metric: `failover: kill -9 of a hub (${fmt(m['failover_victim_agents'], 0)} agents), 99 % back`, single: '', cluster: `${fmt(m['failover_back99_s'], 1)} s`, target: '<= 60 s', verdict: check(m['failover_back99_s'], (v) => v <= 60) },
    { metric: '  all back (agents) / 99 % listed at a survivor', single: '', cluster: `${fmt(m['failover_back_all_s'], 1)} / ${fmt(m['failover_listed99_s'], 1)} s`, target: '', verdict: '' },
    { metric: '  `list` during that storm (p50 / max)', single: '', cluster: `${fmt(m['failover_list_p50_ms'], 0)} / ${fmt(m['failover_list_max_ms'], 0)} ms`, target: '< 1 s', verdict: check(m['failover_list_max_ms'], (v) => v < 1000) },
    { metric: `  jobs lost (of ${fmt(m['failover_accepted'], 0)} accepted, fan-out in flight)`, single: '', cluster: fmt(m['failover_jobs_lost'], 0), target: '0', verdict: check(m['failover_jobs_lost'], (v) => v === 0 && m['failover_jobs_started_twice'] === 0 && m['failover_jobs_ran_not_recorded'] === 0 && m['failover_views_differ'] === 0) },
    { metric: '  started twice / ran but recorded otherwise / views differ / interrupted', single: '', cluster: ['failover_jobs_started_twice', 'failover_jobs_ran_not_recorded', 'failover_views_differ', 'failover_interrupted'].map((k) => fmt(m[k], 0)).join(' / '), target: '0 / 0 / 0 /', verdict: '' },
  ];
  const head: Row = { metric: 'metric', single: `single hub (${nb})`, cluster: `cluster (${N} on ${HUBS})`, target: 'target', verdict: '' };
  const all = [head, ...rows];
  const w = (k: keyof Row): number => Math.max(...all.map((r) => r[k].length));
  const line = (r: Row): string => `${r.metric.padEnd(w('metric'))}  ${r.single.padStart(w('single'))}  ${r.cluster.padStart(w('cluster'))}  ${r.target.padEnd(w('target'))}  ${r.verdict}`.trimEnd();
  const cpus = os.cpus();
  process.stdout.write(`\nBento cluster bench: ${N} agents on ${HUBS} hubs, ${W} load generators, ${cpus.length} cores (${cpus[0]?.model ?? '?'}), node ${process.version}\n\n`);
  process.stdout.write(`${[line(head), ...rows.map(line)].join('\n')}\n`);
  if (notes.length) process.stdout.write(`\nnotes:\n${notes.map((n) => `  - ${n}`).join('\n')}\n`);
  if (argv.markdown) {
    const esc = (s: string): string => s.replace(/\|/g, '\\|');
    process.stdout.write(`\n| metric | ${head.single} | ${head.cluster} | target | |\n|---|---:|---:|---|---|\n${rows.map((r) => `| ${esc(r.metric)} | ${esc(r.single)} | ${esc(r.cluster)} | ${esc(r.target)} | ${r.verdict} |`).join('\n')}\n`);
  }
  const totalSeconds = round((performance.now() - tStart) / 1000, 1);
  if (argv.json) {
    writeFileSync(argv.json, `${JSON.stringify({
      when: new Date().toISOString(), mode: 'cluster',
      machine: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? '?', memGiB: round(os.totalmem() / 2 ** 30, 1), kernel: os.release(), node: process.version, fleetDirFs: run.fsType },
      params: { clients: N, hubs: HUBS, workers: W, triggers: TRIGGERS, jobMs: JOB_MS },
      metrics: Object.fromEntries(Object.entries(M_).map(([k, v]) => [k, round(v, 3)])),
      complete, notes, totalSeconds, extras,
    }, null, 2)}\n`);
  }
  process.stdout.write(`\ntotal ${totalSeconds} s\n`);
}
