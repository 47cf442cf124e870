// Rollouts in a cluster (docs/rollouts.md, "Several hubs"): 3 real hubs on a
// 3-node NATS cluster, real agents spread over them. A rollout started at
// hub A is driven by A; when A dies (kill -9) a surviving hub takes it over
// and finishes it, and when A is frozen (SIGSTOP) long enough to count as
// dead, then resumed, A acts on it no more. Each agent's rebuild command
// appends a line to a file of its own, so "switched exactly once" is counted
// where it happens, on the host; the job records then pass the invariant
// checker (every accepted job ended exactly once, the same at every hub).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/proc.js';
import { checkJobs } from '../helpers/cluster-invariants.js';
import { adminRolloutStatus } from '../helpers/admin-query.js';
import type { RolloutDetail } from '../../common/protocol/rollout.js';

const HOSTS = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8', 'w9'];

async function cluster(): Promise<TestCluster> {
  const c = await TestCluster.create({ hubs: 3 });
  await c.addHosts(HOSTS);
  await c.startHubs();
  for (const h of HOSTS) {
    const runs = path.join(c.dir, `${h}.runs`);
    // 2.5 s per rebuild: a rollout of 9 hosts, 2 at a time, takes long enough to lose its driver mid-way.
    c.startAgent(h, await c.agentConfig(h, { rebuildCommand: ['/bin/sh', '-c', `echo "$1" >> '${runs}'; echo "begin $1"; sleep 2.5; echo "end $1"`, 'rebuild'] }));
  }
  await c.waitConnected(HOSTS);
  return c;
}

/** `rollout status ID` at hub I, over its admin socket (polled every 100-250 ms: no CLI process each time). */
async function status(c: TestCluster, i: number, id: string): Promise<RolloutDetail> {
  return adminRolloutStatus(c.hubs[i]!.fleetDir, id);
}

/** The hub holding the most hosts (its death moves the most agents), and a rollout started there. */
async function startAtBusiestHub(c: TestCluster): Promise<{ a: number; id: string }> {
  const held = await c.list(0);
  const counts = c.hubs.map((h) => held.filter((x) => x.hub === h.name).length);
  const a = counts.indexOf(Math.max(...counts));
  const r = await c.hubCli(a, ['rollout', '--all', '--max-in-flight', '2', '--detach', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const first = JSON.parse(r.stdout.split('\n')[0]!) as { rollout: RolloutDetail };
  assert.equal(first.rollout.driver, c.hubs[a]!.name, 'the hub that started it drives it');
  return { a, id: first.rollout.id };
}

/** Until the rollout (seen at hub I) is past its canary with a job running and hosts still to start. */
function midRollout(c: TestCluster, i: number, id: string): Promise<RolloutDetail> {
  return waitFor('the rollout in wave 2 or later, a job running, hosts pending', async () => {
    const r = await status(c, i, id);
    return r.wave >= 2 && r.counts.running >= 1 && r.counts.pending >= 3 ? r : null;
  }, 60_000, 100);
}

/** The rollout done with every host healthy, the same at every running hub; every host switched exactly once, on the host. */
async function checkDone(c: TestCluster, id: string, notDriver: string): Promise<void> {
  const running = c.hubs.map((h, i) => ({ h, i })).filter((x) => x.h.daemon);
  const done = await waitFor('the rollout done', async () => {
    const r = await status(c, running[0]!.i, id);
    return r.state === 'done' ? r : null;
  }, 120_000, 250);
  assert.equal(done.counts.healthy, HOSTS.length, JSON.stringify(done.members));
  assert.notEqual(done.driver, notDriver, 'a surviving hub finished it');
  // Every other hub's view shows the same once it caught up (views are eventually consistent: the last host's
  // record may reach a hub a moment after "done" reached the first, and a hub just resumed from SIGSTOP has a
  // backlog of deliveries; compared at once, this failed once in a full CI-style run, the resumed hub one write behind).
  const shown = (r: typeof done) => r.members.map((m) => [m.host, m.state, m.jobId]);
  for (const { i } of running.slice(1)) {
    let other = await status(c, i, id);
    for (const t0 = Date.now(); JSON.stringify(shown(other)) !== JSON.stringify(shown(done)) && Date.now() - t0 < 20_000;) {
      await new Promise((r) => setTimeout(r, 250));
      other = await status(c, i, id);
    }
    assert.deepEqual(shown(other), shown(done), `hub${i + 1} sees the same rollout (within 20 s)`);
  }
  for (const h of HOSTS) {
    const runs = (await readFile(path.join(c.dir, `${h}.runs`), 'utf8')).trim().split('\n');
    assert.deepEqual(runs, ['switch'], `${h} switched exactly once`);
  }
  const jobs = done.members.map((m) => m.jobId!);
  await checkJobs(c, jobs, { expect: Object.fromEntries(jobs.map((j) => [j, 'success'])) });
  const records = (await c.jobRecords()).filter((r) => HOSTS.includes(r.host));
  assert.equal(records.length, HOSTS.length, `one job per host, no other: ${JSON.stringify(records.map((r) => [r.host, r.id, r.state]))}`);
}

test('kill -9 of the hub driving a rollout mid-way: a surviving hub takes it over and finishes it; every host switched exactly once', async () => {
  const c = await cluster();
  try {
    const { a, id } = await startAtBusiestHub(c);
    const watcher = (a + 1) % 3;
    await midRollout(c, watcher, id);
    await c.killHub(a);
    await checkDone(c, id, c.hubs[a]!.name);
    const took = c.hubs.filter((h) => h.daemon).map((h) => h.daemon!.output()).join('\n');
    assert.match(took, /"msg":"took the rollout over from a hub that is gone"/);
  } finally {
    await c.close();
  }
});

test('the driving hub frozen (SIGSTOP) until another takes the rollout over, then resumed: it acts on it no more; every host switched exactly once', async () => {
  const c = await cluster();
  try {
    const { a, id } = await startAtBusiestHub(c);
    const watcher = (a + 1) % 3;
    await midRollout(c, watcher, id);
    const frozen = c.hubs[a]!.daemon!;
    frozen.child.kill('SIGSTOP');
    try {
      await waitFor('another hub drives the rollout', async () => {
        const r = await status(c, watcher, id);
        return r.driver !== c.hubs[a]!.name;
      }, 30_000, 200);
      // A little longer: the new driver starts hosts the frozen one had not started yet.
      await waitFor('the new driver at work', async () => (await status(c, watcher, id)).counts.healthy >= 4, 60_000, 200);
    } finally {
      frozen.child.kill('SIGCONT');
    }
    await checkDone(c, id, c.hubs[a]!.name);
    await waitFor('the resumed hub says it no longer drives the rollout', () => /"msg":"another hub drives the rollout now; this hub no longer acts on it"/.test(frozen.output()), 20_000, 200);
  } finally {
    await c.close();
  }
});
