// The host-local page and `bento-client upgrade`, against real hub and agent
// processes: the CLI follows a job over the unix socket and exits with its
// status, the hub records the job, a press during a running job becomes its
// follow-up run (presses coalesce; a waiting hub job runs first), and foreign
// Host / Origin headers are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { TestFleet, runCli, CLIENT_BIN, HUB_BIN } from '../helpers/fleet.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { validateClientConfig } from '../../client/config.js';
import { parsePrometheusText } from '../../common/platform/prometheus.js';
import { request, SCRIPTED_REBUILD } from './web-helpers.js';
import { durableJobs } from '../helpers/state.js';

let fleet: TestFleet;
let page = '';
let port = 0;
let sock = '';
let cfg1 = '';
let sock2 = '';

before(async () => {
  fleet = await TestFleet.create();
  await fleet.addHost('web1');
  await fleet.addHost('web2');
  await fleet.startHub();
  port = await freePort();
  page = `http://127.0.0.1:${port}`;
  sock = path.join(fleet.dir, 'web1.sock');
  sock2 = path.join(fleet.dir, 'web2.sock');
  cfg1 = await fleet.agentConfig('web1', { rebuildCommand: SCRIPTED_REBUILD, rollback: false, rebuildEnv: { LINES: '4', PAUSE: '0.25', SLOW_ACTION: 'boot' }, localPage: { listen: `127.0.0.1:${port}`, socket: sock } });
  fleet.startAgent('web1', cfg1);
  fleet.startAgent('web2', await fleet.agentConfig('web2', { rebuildCommand: SCRIPTED_REBUILD, rollback: false, rebuildEnv: { LINES: '2', PAUSE: '0.1', FAIL: '3' }, localPage: { listen: null, socket: sock2 } }));
  await fleet.waitConnected(['web1', 'web2']);
  await waitFor('local page', async () => (await request(`${page}/api/state`).catch(() => ({ status: 0 }))).status === 200, 5000);
});
after(async () => { await fleet?.close(); });

async function localJobs(host: string): Promise<Array<{ id: string; state: string; action: string }>> {
  const all = await durableJobs(fleet.fleetDir);
  return all.filter((j) => j.id.startsWith('local-') && j.host === host);
}

async function agentMetrics(): Promise<Map<string, number>> {
  return parsePrometheusText((await request(`${page}/metrics`)).body);
}

test('settings: the page is on loopback only; defaults are 127.0.0.1:51337 and /run/bento-client/local.sock', () => {
  const base = { name: 'h1', hub: 'ssh://hub:2222', hubFingerprint: `SHA256:${'A'.repeat(43)}` };
  const d = validateClientConfig(base);
  assert.deepEqual([d.localPage?.listen, d.localPage?.socket], ['127.0.0.1:51337', '/run/bento-client/local.sock']);
  assert.equal(validateClientConfig({ ...base, localPage: null }).localPage, null);
  assert.throws(() => validateClientConfig({ ...base, localPage: { listen: '0.0.0.0:51337' } }), /loopback address/);
  assert.throws(() => validateClientConfig({ ...base, localPage: { listen: '192.168.1.5:51337' } }), /loopback address/);
  assert.equal(validateClientConfig({ ...base, localPage: { listen: '[::1]:8080' } }).localPage?.listen, '[::1]:8080');
  assert.throws(() => validateClientConfig({ ...base, localPage: { socket: 'relative.sock' } }), /absolute path/);
});

test('bento-client upgrade follows the job over the unix socket, exits 0, and the hub records it', async () => {
  const st = await stat(sock);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600, 'owner only unless socketGroup is set');
  const r = await runCli(CLIENT_BIN, ['upgrade', '--socket', sock]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rebuild switch/);
  assert.match(r.stdout, /step 1\/4\nstep 2\/4\nstep 3\/4\nstep 4\/4/);
  assert.match(r.stderr, /switch job local-[A-Za-z0-9_-]{16} started/);
  assert.match(r.stderr, /done, warnings: none/);
  assert.match(r.stderr, /success \(exit 0\) in \d+\.\d s/);
  const id = /job (local-\S+) started/.exec(r.stderr)![1]!;
  await waitFor('hub record', async () => (await localJobs('web1')).some((j) => j.id === id && j.state === 'success'), 5000);
  assert.match(await readFile(path.join(fleet.fleetDir, 'state', 'jobs', `${id}.log`), 'utf8'), /step 4\/4/);
  // --config finds the socket in the agent's own config.
  const viaConfig = await runCli(CLIENT_BIN, ['upgrade', '--config', cfg1, '--action', 'dry-activate', '--json']);
  assert.equal(viaConfig.code, 0, viaConfig.stderr);
  const lines = viaConfig.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines[0]!['ev'], 'accepted');
  assert.ok(lines.some((l) => l['ev'] === 'line' && l['data'] === 'rebuild dry-activate'));
  assert.deepEqual(lines.at(-1), { summary: { jobId: lines[0]!['jobId'], outcome: 'success', exitCode: 0, durationMs: (lines.at(-1)!['summary'] as { durationMs: number }).durationMs, reason: null } });
});

test('bento-client upgrade exits with the job\'s status: a failed rebuild exits 1', async () => {
  const r = await runCli(CLIENT_BIN, ['upgrade', '--socket', sock2]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /failure \(exit 3\).*exited with status 3/);
  await waitFor('hub record', async () => (await localJobs('web2')).some((j) => j.state === 'failure'), 5000);
  const none = await runCli(CLIENT_BIN, ['upgrade', '--socket', path.join(fleet.dir, 'nobody.sock')]);
  assert.equal(none.code, 4);
  assert.match(none.stderr, /no agent answers on .*nobody\.sock.*\[AGENT_NOT_RUNNING\]/);
});

/** A slow hub job on web1 (boot: 4 lines 1 s apart), running once this resolves; `exit`: its trigger's exit code (wrapped: an async function would wait for a promise it returns). */
async function slowHubJob(): Promise<{ exit: Promise<number | null> }> {
  const trig = spawn(process.execPath, [HUB_BIN, 'trigger', 'web1', '--action', 'boot', '--dir', fleet.fleetDir], { stdio: 'ignore' });
  const triggered = new Promise<number | null>((r) => trig.on('exit', r));
  await waitFor('hub job running', async () => {
    const s = JSON.parse((await request(`${page}/api/state`)).body) as { running: { origin: string } | null };
    return s.running?.origin === 'hub';
  }, 5000, 20);
  return { exit: triggered };
}

test('an upgrade during a hub-triggered job becomes its one follow-up run, and the CLI follows that run', async () => {
  // The CLI surely starts while the hub job runs.
  const triggered = (await slowHubJob()).exit;
  const r = await runCli(CLIENT_BIN, ['upgrade', '--socket', sock]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /queued after the running job/);
  assert.match(r.stderr, /waiting for the running job to finish/);
  assert.match(r.stdout, /step 4\/4/);
  assert.equal(await triggered, 0);
  const s = JSON.parse((await request(`${page}/api/state`)).body) as { jobs: Array<{ origin: string; outcome: string }> };
  assert.deepEqual(s.jobs.slice(0, 2).map((j) => [j.origin, j.outcome]), [['local', 'success'], ['hub', 'success']], 'the local run came after the hub\'s');
});

test('two upgrades during a hub job: the hub job runs first, the two requests coalesce into one run, and each CLI follows that run', async () => {
  const m0 = await agentMetrics();
  const localRuns0 = m0.get('bento_agent_jobs_total{outcome="success",origin="local"}') ?? 0;
  const triggered = (await slowHubJob()).exit;
  const first = runCli(CLIENT_BIN, ['upgrade', '--socket', sock, '--action', 'test']);
  await waitFor('first request waiting', async () => (JSON.parse((await request(`${page}/api/state`)).body) as { queued: number }).queued === 1, 5000, 20);
  const second = await runCli(CLIENT_BIN, ['upgrade', '--socket', sock, '--action', 'test']);
  const a = await first;
  assert.equal(a.code, 0, a.stderr);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(await triggered, 0);
  const served = /test job (local-\S+) queued/.exec(second.stderr)?.[1];
  assert.ok(served, second.stderr);
  assert.match(a.stderr, new RegExp(`your request was merged into job ${served}`), 'the first CLI is told which run serves it');
  assert.match(a.stderr, /success \(exit 0\)/);
  assert.match(a.stdout, /rebuild test/);
  const s = JSON.parse((await request(`${page}/api/state`)).body) as { jobs: Array<{ jobId: string; origin: string; outcome: string }> };
  assert.deepEqual(s.jobs.slice(0, 2).map((j) => [j.jobId === served ? 'served' : j.origin, j.outcome]), [['served', 'success'], ['hub', 'success']], 'one local run, after the hub\'s');
  assert.equal((await agentMetrics()).get('bento_agent_jobs_total{outcome="success",origin="local"}'), localRuns0 + 1, 'one rebuild for both requests');
});

test('the local page refuses foreign Host and Origin headers (DNS rebinding, CSRF) and starts nothing', async () => {
  const m0 = await agentMetrics();
  const started0 = m0.get('bento_agent_local_upgrades_total') ?? 0;
  assert.equal((await request(`${page}/`)).status, 200);
  assert.equal((await request(`${page}/`, { headers: { Host: `localhost:${port}` } })).status, 200);
  assert.equal((await request(`${page}/`, { headers: { Host: `[::1]:${port}` } })).status, 200);
  const rebind = await request(`${page}/`, { headers: { Host: `attacker.example:${port}` } });
  assert.equal(rebind.status, 403);
  assert.match(rebind.body, /foreign Host/);
  assert.equal((await request(`${page}/`, { headers: { Host: 'localhost:1' } })).status, 403, 'another port is another origin');
  assert.equal((await request(`${page}/api/upgrade`, { headers: { Host: `attacker.example:${port}` }, body: { action: 'switch' } })).status, 403);
  assert.equal((await request(`${page}/api/upgrade`, { headers: { Origin: 'http://attacker.example' }, body: { action: 'switch' } })).status, 403);
  assert.equal((await request(`${page}/upgrade`, { headers: { 'Sec-Fetch-Site': 'cross-site', 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'action=switch' })).status, 403);
  assert.equal((await request(`${page}/api/state`, { headers: { Origin: 'http://attacker.example' } })).status, 403, 'no cross-origin reads either');
  assert.equal((await request(`${page}/api/upgrade`, { headers: { Origin: 'null' }, body: { action: 'switch' } })).status, 403, 'sandboxed frames too');
  const m = await agentMetrics();
  assert.equal(m.get('bento_agent_local_upgrades_total') ?? 0, started0, 'nothing was started');
  assert.equal(m.get('bento_agent_local_refused_total{reason="host"}'), 3, fleet.agents.get('web1')!.output().split('\n').filter((l) => l.includes('refused')).join('\n'));
  assert.equal(m.get('bento_agent_local_refused_total{reason="origin"}'), 4);
  // The page's own origin may.
  const ok = await request(`${page}/api/upgrade`, { headers: { Origin: page }, body: { action: 'build' } });
  assert.equal(ok.status, 202, ok.body);
  await waitFor('job done', async () => {
    const s = JSON.parse((await request(`${page}/api/state`)).body) as { running: unknown; jobs: Array<{ action: string; outcome: string | null }> };
    return s.running === null && s.jobs[0]?.action === 'build' && s.jobs[0].outcome === 'success';
  }, 10_000);
  assert.equal((await agentMetrics()).get('bento_agent_jobs_total{outcome="success",origin="local"}'), 5, 'upgrade, dry-activate, the follow-up run, the coalesced run, build');
});
