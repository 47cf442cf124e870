// Smoke run of `npm run bench` (test/bench/main.ts): a real hub, 50 simulated
// agents in two load-generator processes, a short idle window, and the OpenSSH
// comparison. It proves every phase runs to the end and reports each metric as
// a finite number; the real figures come from the 10,000-agent run recorded in
// docs/performance.md. Bounded: the bench is killed after 58 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BENCH = path.resolve(here, '../bench/main.js');

const CORE_METRICS = [
  'hub_start_s', 'hub_rss_baseline_mib',
  'connect_all_s', 'connect_rate_per_s', 'connect_hub_cpu_s', 'connect_hub_cpu_ms_per_handshake',
  'hub_rss_connected_mib', 'hub_rss_per_host_kib', 'hub_pss_per_host_kib',
  'idle_cpu_pct_core', 'idle_heartbeats_per_s', 'hub_rss_per_host_after_idle_kib',
  'trigger_count', 'trigger_to_accepted_p50_ms', 'trigger_to_start_p50_ms', 'trigger_to_start_p99_ms', 'trigger_to_start_max_ms',
  'fanout_hosts', 'fanout_acked', 'fanout_all_acked_s', 'fanout_hub_cpu_s',
  'storm_converged_s', 'storm_agents_back_s', 'storm_hub_admin_up_s', 'storm_hub_cpu_s', 'storm_hub_cpu_pct_core',
  'storm_list_p50_ms', 'storm_list_max_ms',
  // The floor phase: the same agents against a bare ssh2 server (test/bench/floor.ts).
  'floor_connect_all_s', 'floor_connect_hub_cpu_ms_per_handshake', 'floor_hub_rss_per_host_kib', 'floor_idle_cpu_pct_core',
  'floor_trigger_to_start_p50_ms', 'floor_trigger_to_start_p99_ms', 'floor_fanout_acked', 'floor_fanout_all_acked_s',
  'poll_tunnel_bytes', 'poll_tunnel_bytes_in', 'poll_tunnel_bytes_out', 'poll_tunnel_ms', 'poll_fresh_bytes', 'poll_fresh_ms',
];
const OPENSSH_METRICS = [
  'openssh_tunnels', 'openssh_pss_per_tunnel_kib', 'openssh_rss_per_tunnel_kib', 'openssh_handshakes_per_s',
  'ssh_true_p50_ms', 'ssh_true_p99_ms',
  'ratio_memory_openssh_pss_over_bento_rss', 'ratio_push_p50_ssh_true_over_trigger', 'ratio_push_p99_ssh_true_over_trigger',
];

function openSshExpected(): boolean {
  return process.getuid?.() === 0 && ['/usr/sbin/sshd', '/usr/bin/sshd', '/sbin/sshd'].some((p) => existsSync(p));
}

test('bench --quick with 50 agents completes and reports every metric as a finite number', { timeout: 70_000 }, async () => {
  const { dir, cleanup } = await tmpDir('bento-bench-smoke-');
  try {
    const jsonFile = path.join(dir, 'bench.json');
    const t0 = Date.now();
    const child = spawn(process.execPath, [BENCH, '--quick', '--clients', '50', '--json', jsonFile, '--base', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
    // SIGTERM lets the bench clean up its hub, workers and sshd; SIGKILL if it does not.
    const killer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, 58_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(killer);
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(code, 0, `bench failed (exit ${code}) after ${seconds.toFixed(1)} s:\n${out.slice(-6000)}`);
    assert.ok(seconds < 60, `bench took ${seconds.toFixed(1)} s`);

    const report = JSON.parse(await readFile(jsonFile, 'utf8')) as {
      metrics: Record<string, unknown>; ratiosToFloor: Record<string, number>; complete: Record<string, boolean>; notMeasured: Record<string, string>; notes: string[];
    };
    const expected = openSshExpected() ? [...CORE_METRICS, ...OPENSSH_METRICS] : CORE_METRICS;
    for (const k of expected) {
      const v = report.metrics[k];
      assert.ok(typeof v === 'number' && Number.isFinite(v), `metric ${k} = ${String(v)}\n${out.slice(-4000)}`);
    }
    for (const [k, v] of Object.entries(report.metrics)) {
      assert.ok(typeof v === 'number' && Number.isFinite(v), `metric ${k} is not a finite number: ${String(v)}`);
    }
    assert.equal(report.metrics['fanout_acked'], 50);
    assert.equal(report.metrics['fanout_hosts'], 50);
    assert.equal(report.metrics['floor_fanout_acked'], 50);
    assert.ok(report.ratiosToFloor['trigger_to_start_p99_ms']! > 0, 'each Bento figure as a ratio to the floor of the same run');
    assert.deepEqual(report.complete, { connect: true, triggers: true, fanout: true, storm: true });
    // The no-change poll was measured with the real pull code, so nothing is left "n/a".
    assert.deepEqual(report.notMeasured, {});
    assert.ok((report.metrics['poll_fresh_bytes'] as number) > (report.metrics['poll_tunnel_bytes'] as number), 'a fresh connection costs a handshake more');
    // The printed table carries the same run.
    assert.match(out, /trigger-to-start p99/);
    assert.match(out, /Bento \/ floor: trigger-to-start p99/);
    assert.match(out, /reconnect storm, all 50 back/);
  } finally {
    await cleanup();
  }
});
