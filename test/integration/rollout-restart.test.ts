// Rollouts that outlive their CLI and their hub, and hosts that are offline
// at their turn (docs/rollouts.md): the hub is killed with SIGKILL in the
// middle of a wave and the restarted hub finishes the rollout from its
// "rollouts" keyed store and the job records, with one job per host, no
// second switch; offline hosts are skipped, queued, or waited for.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestFleet } from '../helpers/fleet.js';
import { nixAvailable, nixUnavailableReason, readActivations } from '../fixtures/nix.js';
import { finalRollout, jobsSince, rolloutFleet, rolloutIdOf, waitRollout, type RolloutHost } from './rollout-helpers.js';

const skip = nixAvailable() ? false : nixUnavailableReason();
const KILL = ['k1', 'k2', 'k3', 'k4'];
let fleet: TestFleet;
let hosts: Map<string, RolloutHost>;

before(async () => {
  if (skip) return;
  // A long rollback window for the k hosts: the hub is down for a moment while their switch waits for it.
  const long = { agent: { rollbackTimeoutMs: 30_000 } };
  ({ fleet, hosts } = await rolloutFleet([...KILL, 'o1', 'o2', 'o3'], Object.fromEntries(KILL.map((k) => [k, long]))));
  for (const n of [...KILL, 'o1']) hosts.get(n)!.start();
  await fleet.waitConnected([...KILL, 'o1']);
});

after(async () => { await fleet?.close(); });

const host = (n: string): RolloutHost => hosts.get(n)!;

test('hub killed (SIGKILL) in the middle of wave 2: the restarted hub resumes the rollout; every host switches exactly once', { skip }, async () => {
  for (const n of KILL) await host(n).setConfig({ label: `kill-${n}`, switchSleepSeconds: 2 });
  const since = new Date().toISOString();
  const r = await fleet.hubCli(['rollout', ...KILL, '--max-in-flight', '1', '--detach', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const id = rolloutIdOf(r.stdout);
  // The CLI is gone: the hub drives the rollout alone.
  await waitRollout(fleet, id, 'wave 2 running', (x) => x.wave === 2 && x.counts.running === 1);
  await fleet.stopHub('SIGKILL');
  await fleet.startHub();
  const fin = await waitRollout(fleet, id, 'the restarted hub to finish the rollout', (x) => x.state !== 'running', 120_000);
  assert.equal(fin.state, "done", `${fin.reason}\n${JSON.stringify(fin.members)}\n${fleet.hub!.output().split("\n").filter((l) => /rollout|scheduler/.test(l)).join("\n")}`);
  assert.deepEqual(fin.members.map((m) => [m.host, m.state]), KILL.map((n) => [n, 'healthy']));
  const jobs = await jobsSince(fleet, since, KILL);
  assert.deepEqual(jobs.map((j) => j.host).sort(), [...KILL].sort(), `one job per host: ${JSON.stringify(jobs.map((j) => [j.host, j.id, j.state]))}`);
  assert.ok(jobs.every((j) => j.state === 'success'));
  for (const n of KILL) {
    const mine = (await readActivations(host(n).nix)).filter((a) => a.includes(`-kill-${n}`));
    assert.equal(mine.length, 1, `${n} activated its new system once: ${mine.join(', ')}`);
  }
  assert.match(fleet.hub!.output(), /"msg":"rollout done"/, 'the restarted hub finished it');
});

test('--offline skip (the default): the offline host is skipped and reported; it gets no job', { skip }, async () => {
  const since = new Date().toISOString();
  const r = await fleet.hubCli(['rollout', 'o1', 'o2', '--canary', '2', '--json'], 60_000);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const fin = finalRollout(r.stdout);
  assert.deepEqual(fin.members.map((m) => [m.host, m.state, m.reason]), [['o1', 'healthy', null], ['o2', 'skipped', 'offline at its turn (--offline skip)']]);
  assert.match(fin.reason ?? '', /^1 healthy, 1 skipped \(offline\)$/);
  assert.deepEqual((await jobsSince(fleet, since)).map((j) => j.host), ['o1']);
  const text = await fleet.hubCli(['rollout', 'status', fin.id]);
  assert.match(text.stdout, /1\s+o2\s+skipped\s+-\s+-\s+\S+\s+offline at its turn \(--offline skip\)/);
});

test('--offline queue: the offline host gets a queued job, the rollout does not wait; the job runs when it connects', { skip }, async () => {
  await host('o2').setConfig({ label: 'queued-o2' });
  const since = new Date().toISOString();
  const r = await fleet.hubCli(['rollout', 'o1', 'o2', '--canary', '2', '--offline', 'queue', '--json'], 60_000);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const fin = finalRollout(r.stdout);
  assert.equal(fin.state, 'done');
  const o2 = fin.members.find((m) => m.host === 'o2')!;
  assert.equal(o2.state, 'queued');
  assert.equal((await jobsSince(fleet, since, ['o2']))[0]?.state, 'queued');
  host('o2').start();
  const later = await waitRollout(fleet, fin.id, 'o2 healthy once it connected', (x) => x.members.find((m) => m.host === 'o2')?.state === 'healthy');
  assert.equal(later.members.find((m) => m.host === 'o2')!.jobId, o2.jobId, 'the queued job itself ran');
  assert.equal((await jobsSince(fleet, since, ['o2']))[0]?.state, 'success');
});

test('--offline wait: a host that stays offline past --offline-timeout fails its wave; one that connects in time gets its turn', { skip }, async () => {
  const since = new Date().toISOString();
  const t = await fleet.hubCli(['rollout', 'o1', 'o3', '--canary', '2', '--offline', 'wait', '--offline-timeout', '2s', '--json'], 60_000);
  assert.equal(t.code, 7, `${t.stdout}\n${t.stderr}`);
  const halted = finalRollout(t.stdout);
  assert.match(halted.reason ?? '', /^wave 1: 1 of 2 hosts failed, 0 tolerated: o3 \(offline for 2 s at its turn \(--offline wait\)\)$/);
  assert.deepEqual((await jobsSince(fleet, since, ['o3'])), []);
  assert.equal((await fleet.hubCli(['rollout', 'abort', halted.id])).code, 0);

  await host('o3').setConfig({ label: 'waited-o3' });
  const follow = fleet.hubCli(['rollout', 'o3', 'o1', '--offline', 'wait', '--offline-timeout', '60s', '--json'], 90_000);
  const id = await waitRollout(fleet, await latestId(), 'o3 waited for', (x) => x.members.find((m) => m.host === 'o3')?.state === 'waiting').then((x) => x.id);
  host('o3').start();
  const r = await follow;
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const fin = finalRollout(r.stdout);
  assert.equal(fin.id, id);
  assert.deepEqual(fin.members.map((m) => [m.host, m.state]), [['o3', 'healthy'], ['o1', 'healthy']]);
});

async function latestId(): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const list = JSON.parse((await fleet.hubCli(['rollout', 'status', '--json'])).stdout) as { rollouts: Array<{ id: string; state: string }> };
    const running = list.rollouts.find((x) => x.state === 'running');
    if (running) return running.id;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('no running rollout');
}
