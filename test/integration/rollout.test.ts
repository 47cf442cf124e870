// Staged rollouts with a real hub and six real agents (issue 17 section 1,
// docs/rollouts.md). Each host has a real Nix profile that the nixos-rebuild
// stand-in switches; a canary whose build fails, or whose own health check
// fails on the new system, must halt the rollout before any other host gets a
// job, and the durable job records prove none was sent.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HUB_BIN, type TestFleet } from '../helpers/fleet.js';
import { nixAvailable, nixUnavailableReason, currentSystemPath, readActivations } from '../fixtures/nix.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { collectSse, request } from './web-helpers.js';
import type { RolloutDetail } from '../../common/protocol/rollout.js';
import { finalRollout, jobOutput, jobsSince, maxOverlap, rolloutFleet, rolloutIdOf, waitRollout, type RolloutHost } from './rollout-helpers.js';

const execFileP = promisify(execFile);
const skip = nixAvailable() ? false : nixUnavailableReason();
const NAMES = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
let fleet: TestFleet;
let hosts: Map<string, RolloutHost>;
let dash = '';

before(async () => {
  if (skip) return;
  const port = await freePort();
  dash = `http://127.0.0.1:${port}`;
  ({ fleet, hosts } = await rolloutFleet(NAMES, { r6: { health: true } }, { hubSettings: { dashboard: { listen: `127.0.0.1:${port}`, tokenFile: null } } }));
  for (const h of hosts.values()) h.start();
  await fleet.waitConnected(NAMES);
});

after(async () => { await fleet?.close(); });

const host = (n: string): RolloutHost => hosts.get(n)!;
/** Every host's next configuration: label-HOST unless `extra` says otherwise. */
async function configure(label: string, extra: Record<string, { buildFails?: boolean; switchSleepSeconds?: number; label?: string }> = {}): Promise<void> {
  for (const n of NAMES) {
    const e = extra[n] ?? {};
    await host(n).setConfig({ ...e, label: e.label ?? `${label}-${n}` });
  }
}
const systems = async (names: string[]): Promise<Array<string | null>> => Promise.all(names.map((n) => currentSystemPath(host(n).nix)));

test('a canary whose rebuild fails halts the rollout: no other host is sent a job; resume --retry-failed after the fix finishes it', { skip }, async () => {
  await configure('v1', { r1: { buildFails: true } });
  const others = NAMES.filter((n) => n !== 'r1');
  const before = await systems(others);
  const since = new Date().toISOString();
  const r = await fleet.hubCli(['rollout', 'r1', '--all', '--json'], 120_000);
  assert.equal(r.code, 7, `halted is exit 7 (ROLLOUT_HALTED)\n${r.stdout}\n${r.stderr}`);
  const done = finalRollout(r.stdout);
  assert.equal(done.state, 'halted');
  assert.match(done.reason ?? '', /^wave 1: 1 of 1 hosts failed, 0 tolerated: r1 \(failure: nixos-rebuild exited with status \d+\)/);
  assert.deepEqual(done.members.map((m) => [m.host, m.state]), [['r1', 'failed'], ...others.map((n) => [n, 'pending'])]);
  // Proof from the hub's durable state: the only job since the start is the canary's.
  const jobs = await jobsSince(fleet, since);
  assert.deepEqual(jobs.map((j) => [j.host, j.state]), [['r1', 'failure']]);
  assert.deepEqual(await systems(others), before, 'no other host switched');
  // status shows it above the table, and --json has it in "rollouts".
  const st = await fleet.hubCli(['status']);
  assert.match(st.stdout.split('\n')[0]!, new RegExp(`^rollout ${done.id} \\(switch\\) halted · wave 1/3 · 0/6 healthy · 1 failed · 5 pending: wave 1: 1 of 1 hosts failed`));
  const sj = JSON.parse((await fleet.hubCli(['status', '--json'])).stdout) as { rollouts: Array<{ id: string; state: string }> };
  assert.deepEqual(sj.rollouts.map((x) => [x.id, x.state]), [[done.id, 'halted']]);
  // `rollout status ID --json` through the CLI (the fixtures poll it over the admin socket) says the same.
  const one = await fleet.hubCli(['rollout', 'status', done.id, '--json']);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual((JSON.parse(one.stdout) as { rollout: RolloutDetail }).rollout.members.map((m) => [m.host, m.state]), done.members.map((m) => [m.host, m.state]));
  // A second rollout over the same hosts is refused while this one is halted.
  const again = await fleet.hubCli(['rollout', 'r2']);
  assert.equal(again.code, 6);
  assert.match(again.stderr, new RegExp(`rollout ${done.id} \\(halted\\) already covers r2; resume or abort it first \\[ROLLOUT_CONFLICT\\]`));

  // The dashboard's fleet page has the panel, with what to do next; /api/rollouts the same summary.
  const page = await request(`${dash}/`);
  assert.match(page.body, new RegExp(`<section id="rollouts"[^>]*>[\\s\\S]*${done.id}</strong> <span class="badge s-bad">halted</span>[\\s\\S]*bento-hub rollout resume ${done.id}</code>`));
  const api = JSON.parse((await request(`${dash}/api/rollouts`)).body) as { rollouts: Array<{ id: string; state: string }> };
  assert.deepEqual(api.rollouts.map((x) => [x.id, x.state]), [[done.id, 'halted']]);
  // An open fleet page sees the panel change live, down to its end (nothing active: hidden).
  const live = collectSse(`${dash}/events`, (e, all) => all.filter((x) => x.event === 'replace' && (JSON.parse(x.data) as { id: string }).id === 'rollouts').length > 1
    && e.event === 'replace' && /<section id="rollouts"[^>]*hidden>/.test((JSON.parse(e.data) as { html: string }).html), { timeoutMs: 120_000 });

  // The admin fixes r1's configuration and resumes, running r1 again.
  await host('r1').setConfig({ label: 'v1-r1' });
  const res = await fleet.hubCli(['rollout', 'resume', done.id, '--retry-failed', '--json'], 120_000);
  assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
  const fin = finalRollout(res.stdout);
  assert.equal(fin.state, 'done');
  assert.deepEqual(fin.members.map((m) => m.state), NAMES.map(() => 'healthy'));
  for (const n of NAMES) assert.match((await currentSystemPath(host(n).nix)) ?? '', new RegExp(`-v1-${n}$`));
  const r6 = fin.members.find((m) => m.host === 'r6')!;
  assert.equal(r6.health, 'passed', 'r6 has a health check, and it passed');
  assert.equal(fin.members.find((m) => m.host === 'r2')!.health, null, 'r2 has none');
  const panels = (await live).events.filter((e) => e.event === 'replace').map((e) => JSON.parse(e.data) as { id: string; html: string }).filter((x) => x.id === 'rollouts');
  assert.ok(panels.some((p) => new RegExp(`${done.id}</strong> <span class="badge s-run">running</span>`).test(p.html)), 'the page saw it running again');
  assert.match(panels.at(-1)!.html, /hidden>/, 'and then nothing active');
});

test('a green rollout over six agents: three waves, one after the other, never more than --max-in-flight jobs at once', { skip }, async () => {
  // One second per switch, so jobs of one wave overlap and the limit is what stops a third.
  await configure('v2', Object.fromEntries(NAMES.map((n) => [n, { switchSleepSeconds: 1 }])));
  const since = new Date().toISOString();
  const r = await fleet.hubCli(['rollout', '--all', '--max-in-flight', '2', '--json'], 120_000);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const fin = finalRollout(r.stdout);
  assert.deepEqual([fin.state, fin.waves, fin.plan.map((w) => w.size), fin.maxInFlight], ['done', 3, [1, 2, 3], 2]);
  const waves = fin.plan.map((w) => fin.members.filter((m) => m.wave === w.wave).map((m) => m.host));
  const jobs = await jobsSince(fleet, since);
  assert.equal(jobs.length, 6, 'one job per host');
  assert.ok(jobs.every((j) => j.state === 'success'), JSON.stringify(jobs.map((j) => [j.host, j.state, j.reason])));
  assert.equal(maxOverlap(jobs), 2, 'wave 3 has three hosts: two ran at once, the third waited for a slot');
  for (let w = 1; w < waves.length; w++) {
    const prevEnd = Math.max(...jobs.filter((j) => waves[w - 1]!.includes(j.host)).map((j) => Date.parse(j.endedAt!)));
    const nextStart = Math.min(...jobs.filter((j) => waves[w]!.includes(j.host)).map((j) => Date.parse(j.requestedAt)));
    assert.ok(nextStart >= prevEnd, `wave ${w + 1} started only after wave ${w} ended`);
  }
  for (const n of NAMES) assert.match((await currentSystemPath(host(n).nix)) ?? '', new RegExp(`-v2-${n}$`));
  // Each job's own log: the switch was kept only after a fresh connection to the hub (the rollback window closed).
  for (const j of jobs) assert.match(await jobOutput(fleet, j.id), /rollback guard: a fresh connection to the hub succeeded .* after the switch; keeping \/nix\/store\//, j.host);
});

test('a host whose own health check fails on the new system is rolled back, and the rollout halts there', { skip }, async () => {
  await configure('v3', { r6: { label: 'v3-unhealthy' } });
  const installedBefore = await currentSystemPath(host('r6').nix);
  const since = new Date().toISOString();
  const r = await fleet.hubCli(['rollout', 'r6', 'r1', 'r2', '--json'], 120_000);
  assert.equal(r.code, 7, `${r.stdout}\n${r.stderr}`);
  const fin = finalRollout(r.stdout);
  const r6 = fin.members.find((m) => m.host === 'r6')!;
  assert.deepEqual([r6.state, r6.health], ['failed', 'failed']);
  assert.match(r6.reason ?? '', /^rolled-back: rolled back: health check failed: sh exited with status 1 .*; re-activated \/nix\/store\/\S+-v2-r6$/);
  assert.equal(await currentSystemPath(host('r6').nix), installedBefore, 'r6 runs what it ran before');
  const jobs = await jobsSince(fleet, since);
  assert.deepEqual(jobs.map((j) => [j.host, j.state, j.health]), [['r6', 'rolled-back', 'failed']]);
  const abort = await fleet.hubCli(['rollout', 'abort', fin.id]);
  assert.equal(abort.code, 0, abort.stderr);
});

test('abort during a wave: the running job finishes, no further host starts, and the follower exits 8', { skip }, async () => {
  await configure('v4', Object.fromEntries(NAMES.map((n) => [n, { switchSleepSeconds: 2 }])));
  const since = new Date().toISOString();
  const follow = fleet.hubCli(['rollout', '--all', '--canary', '2', '--max-in-flight', '1', '--json'], 120_000);
  const id = await waitFor('the rollout to start', async () => {
    const list = JSON.parse((await fleet.hubCli(['rollout', 'status', '--json'])).stdout) as { rollouts: Array<{ id: string; state: string; counts: { running: number } }> };
    const r = list.rollouts.find((x) => x.state === 'running' && x.counts.running === 1);
    return r?.id;
  }, 30_000, 100);
  const ab = await fleet.hubCli(['rollout', 'abort', id, '--json']);
  assert.equal(ab.code, 0, ab.stderr);
  // What had its turn when the abort landed (under load that may be r1 alone, or r1 done and r2 running).
  const atAbort = (JSON.parse(ab.stdout) as { rollout: RolloutDetail }).rollout;
  assert.equal(atAbort.state, 'aborted');
  const started = atAbort.members.filter((m) => m.jobId !== null).map((m) => m.host);
  assert.ok(started.length >= 1 && started.length <= 2 && started[0] === 'r1', JSON.stringify(atAbort.members));
  const r = await follow;
  assert.equal(r.code, 8, `${r.stdout}\n${r.stderr}`);
  assert.equal(rolloutIdOf(r.stdout), id);
  const fin = await waitRollout(fleet, id, 'the running job to finish', (x) => x.counts.running === 0);
  assert.deepEqual([fin.state, fin.counts.healthy, fin.counts.cancelled], ['aborted', started.length, 6 - started.length]);
  const jobs = await jobsSince(fleet, since);
  assert.deepEqual(jobs.map((j) => [j.host, j.state]), started.map((h) => [h, 'success']), 'the running job finished; no host started after the abort');
  for (const n of NAMES.filter((x) => !started.includes(x))) {
    assert.ok(!(await readActivations(host(n).nix)).some((a) => a.includes('-v4-')), `${n} never switched`);
    assert.equal(fin.members.find((m) => m.host === n)?.state, 'cancelled');
  }
  const again = await fleet.hubCli(['rollout', 'abort', id]);
  assert.equal(again.code, 6);
  assert.match(again.stderr, /is already aborted \[ROLLOUT_STATE\]/);
  const text = await fleet.hubCli(['rollout', 'status']);
  assert.match(text.stdout, new RegExp(`^${id}\\s+aborted\\s+switch\\s+1/2\\s+6\\s+${started.length}\\s+0\\s+\\S+\\s+aborted by the admin in wave 1 of 2$`, 'm'));
});

test('bad input: clear errors, nothing started', { skip }, async () => {
  const since = new Date().toISOString();
  const cases: Array<[string[], number, RegExp]> = [
    [['rollout', 'r1', '--canary', '0'], 2, /--canary must be a number of hosts \(1 or more\) or a percentage like 25% \(1\.\.100\), not "0" \[USAGE\]/],
    [['rollout', 'r1', '--canary', '1', '--waves', '1,50%'], 2, /give --canary or --waves, not both/],
    [['rollout', 'r1', '--offline', 'later'], 2, /--offline must be one of skip, queue, wait/],
    [['rollout', 'r1', '--offline-timeout', '5m'], 2, /--offline-timeout only applies with --offline wait/],
    [['rollout', 'nosuchhost', 'r1'], 5, /no host "nosuchhost" in the registry; nothing was started \[UNKNOWN_HOST\]/],
    [['rollout', 'status', 'r-zzzzzzzz'], 5, /no rollout r-zzzzzzzz .*\[UNKNOWN_ROLLOUT\]/],
    [['rollout', 'resume', 'not-an-id'], 5, /"not-an-id" is not a rollout id/],
    [['rollout', 'status', '--retry-failed'], 2, /--retry-failed does not apply to `rollout status`/],
  ];
  for (const [args, code, re] of cases) {
    const r = await fleet.hubCli(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
  assert.deepEqual(await jobsSince(fleet, since), []);
});

test('on a terminal: one summary line updating in place, a line of its own only for each wave', { skip }, async () => {
  await configure('v5');
  // A real pseudo-terminal (util-linux script), as an admin's shell gives it.
  const cmd = [process.execPath, HUB_BIN, 'rollout', '--all', '--dir', fleet.fleetDir].map((a) => `'${a}'`).join(' ');
  const { stdout, code } = await execFileP('script', ['-qefc', cmd, '/dev/null'], { env: { ...process.env, NO_COLOR: '1', COLUMNS: '200' }, timeout: 120_000 }).then(
    (r) => ({ ...r, code: 0 }), (e: { stdout: string; code: number }) => ({ stdout: e.stdout, code: e.code }));
  assert.equal(code, 0, stdout);
  const text = stdout.replace(/\r\n/g, '\n');
  // Every "go to column 0, clear the line" is followed by the summary line, a wave line, or (the last) the report.
  const redraws = text.split('\r\x1b[K').slice(1, -1).map((s) => s.split('\n')[0]!).filter(Boolean);
  assert.ok(redraws.filter((r) => r.includes('running ·')).length >= 3, `the summary line was redrawn in place: ${JSON.stringify(text)}`);
  for (const r of redraws) assert.match(r, /^(rollout r-\S+ \(switch\) running · wave \d\/3 · \d\/6 healthy|wave \d\/3 begins$)/, r);
  // What stays on the screen: the plan, one line per wave, the final report; no line per host or per event.
  const kept = text.split('\n').map((l) => l.split('\r\x1b[K').pop()!.trim()).filter(Boolean);
  assert.equal(kept.length, 6, kept.join('\n'));
  assert.match(kept[0]!, /^rollout r-\S+: switch on 6 hosts in 3 waves \(1, 2, 3\), at most 6 at once; it halts at the first failed host; offline hosts are skipped\.$/);
  assert.deepEqual(kept.slice(1, 5), ['canary: r1', 'wave 1/3 begins', 'wave 2/3 begins', 'wave 3/3 begins']);
  assert.match(kept[5]!, /^rollout r-\S+ \(switch\) done · wave 3\/3 · 6\/6 healthy: 6 healthy$/);
});
