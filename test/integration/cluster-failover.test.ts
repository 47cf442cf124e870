// Hubs dying: kill -9 of a hub (its agents reconnect to the others, a job
// queued for an offline host runs wherever the host lands, a running job's
// result reaches whichever hub the agent gets to), and a hub frozen for the
// real 30 s (SIGSTOP) then resumed: it must not overwrite what the others
// wrote meanwhile, and it drops the sessions it lost. After each, every
// accepted job ended exactly once, the same at every hub (the invariant
// checker). Each test has its own cluster: both kill a hub.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from '../helpers/cluster.js';
import { sleep, waitFor } from '../helpers/proc.js';
import { checkJobs } from '../helpers/cluster-invariants.js';

const SLOW = ['/bin/sh', '-c', 'echo "begin $1"; sleep 4; echo "end $1"', 'rebuild'];
const HOSTS = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'];

interface Ev { ev: string; host?: string; jobId?: string; data?: string; outcome?: string; disposition?: string; code?: string }
const parse = (out: string): Ev[] => out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev);

async function cluster(): Promise<TestCluster> {
  const c = await TestCluster.create({ hubs: 3 });
  await c.addHosts(HOSTS);
  await c.startHubs();
  for (const h of HOSTS) c.startAgent(h, await c.agentConfig(h, { rebuildCommand: SLOW }));
  await c.waitConnected(HOSTS);
  return c;
}

/** Two hosts held by the same hub, and that hub's index. */
async function pairOnOneHub(c: TestCluster): Promise<{ victim: number; hosts: [string, string] }> {
  const list = await c.list(0);
  for (let i = 0; i < c.hubs.length; i++) {
    const held = list.filter((x) => x.hub === c.hubs[i]!.name).map((x) => x.name);
    if (held.length >= 2) return { victim: i, hosts: [held[0]!, held[1]!] };
  }
  throw new Error(`no hub holds two hosts: ${JSON.stringify(list.map((x) => [x.name, x.hub]))}`);
}

test('kill -9 of a hub: its agents move to the others, a queued job runs where its host lands, the running job\'s result is accepted there; nothing lost or doubled', async () => {
  const c = await cluster();
  try {
    const { victim, hosts: [runner, sleeper] } = await pairOnOneHub(c);
    const asker = (victim + 1) % 3;
    const accepted: string[] = [];
    // sleeper goes offline (its agent stops), and gets a job queued at another hub.
    await c.agents.get(sleeper)!.stop();
    await waitFor(`${sleeper} offline`, async () => !(await c.list(asker)).some((x) => x.name === sleeper), 10_000, 100);
    const queued = parse((await c.hubCli(asker, ['trigger', sleeper, '--queue', '--json'])).stdout).find((e) => e.ev === 'accepted')!;
    assert.equal(queued.disposition, 'queued');
    accepted.push(queued.jobId!);
    // runner runs a job the victim dispatched, followed at another hub.
    const follow = c.hubCli(asker, ['trigger', runner, '--json'], 60_000);
    await waitFor(`${runner} running`, async () => (await c.list(asker)).find((x) => x.name === runner)?.runningJob, 10_000, 100);
    await sleep(500);
    const killedAt = Date.now();
    await c.killHub(victim);
    // Every agent is back, at a surviving hub.
    const live = HOSTS.filter((h) => h !== sleeper);
    // Listed, and at a survivor: right after the kill the survivors still list the dead hub's hosts at it
    // until its liveness lapses (waitConnected alone, which asks "listed anywhere", can pass on those rows).
    const dead = c.hubs[victim]!.name;
    await waitFor('every live host listed at a surviving hub', async () => {
      const rows = await c.list(asker);
      return live.every((h) => rows.some((x) => x.name === h && x.hub !== dead));
    }, 30_000, 100);
    await c.waitConnected(live, 30_000);
    const back = Date.now() - killedAt;
    for (const x of await c.list(asker)) assert.notEqual(x.hub, c.hubs[victim]!.name, `${x.name} still shown at the dead hub`);
    // The running job's result reached a surviving hub, and the admin following it at the asking hub saw it end.
    const ev = parse((await follow).stdout);
    const job = ev.find((e) => e.ev === 'accepted')!.jobId!;
    accepted.push(job);
    assert.equal(ev.find((e) => e.ev === 'end')?.outcome, 'success', (await follow).stdout);
    assert.equal(ev.filter((e) => e.ev === 'output' && e.data === 'end switch').length, 1, 'the last line once');
    // The queued job runs wherever sleeper lands now.
    c.startAgent(sleeper, await c.agentConfig(sleeper, { rebuildCommand: SLOW }));
    await checkJobs(c, accepted, { expect: { [job]: 'success', [queued.jobId!]: 'success' } });
    const recs = await c.jobRecords();
    assert.notEqual(recs.find((r) => r.id === job)!.hub, c.hubs[victim]!.name, 'the result was recorded by the hub the agent reached');
    process.stdout.write(`# agents of the killed hub back at the others after ${back} ms\n`);
  } finally {
    await c.close();
  }
});

test('a hub frozen (SIGSTOP) for 30 s, then resumed: it drops what it lost and overwrites nothing the others wrote', async () => {
  const c = await cluster();
  try {
    const { victim, hosts: [runner] } = await pairOnOneHub(c);
    const other = (victim + 1) % 3;
    const frozen = c.hubs[victim]!;
    let atResume: Promise<{ stdout: string }> | undefined;
    const follow = c.hubCli(other, ['trigger', runner, '--json'], 90_000);
    await waitFor(`${runner} running`, async () => (await c.list(other)).find((x) => x.name === runner)?.runningJob, 10_000, 100);
    frozen.daemon!.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    try {
      // The others see the frozen hub dead, and its agents come to them.
      await waitFor('the frozen hub\'s agents at the others', async () => {
        const l = await c.list(other);
        return HOSTS.every((h) => l.find((x) => x.name === h && x.hub !== frozen.name));
      }, 25_000, 200);
      const ev = parse((await follow).stdout);
      assert.equal(ev.find((e) => e.ev === 'end')?.outcome, 'success', 'the job ended at the hub its agent went to');
      await sleep(Math.max(0, 28_000 - (Date.now() - stoppedAt)));
      // An admin asks the frozen hub: the request waits in its socket and is the first thing it may do when resumed,
      // maybe before its view shows that the host is held elsewhere now.
      atResume = c.hubCli(victim, ['trigger', runner, '--json'], 60_000);
      await sleep(Math.max(0, 30_000 - (Date.now() - stoppedAt)));
    } finally {
      frozen.daemon!.child.kill('SIGCONT');
    }
    const job = parse((await follow).stdout).find((e) => e.ev === 'accepted')!.jobId!;
    // Either refused (the resumed hub cannot vouch for the host yet) or routed to the new holder and run there;
    // never a job recorded for a session the resumed hub no longer has.
    const first = parse((await atResume!).stdout);
    const firstRejected = first.find((e) => e.ev === 'rejected');
    const firstJob = first.find((e) => e.ev === 'accepted')?.jobId;
    if (firstRejected) assert.ok(['CLUSTER_UNAVAILABLE', 'STATE_CONFLICT'].includes(firstRejected.code ?? ''), JSON.stringify(first));
    else assert.equal(first.find((e) => e.ev === 'end')?.outcome, 'success', JSON.stringify(first));
    // Resumed: it finds every host held elsewhere, drops those sessions, and its view of the job is the others'.
    await waitFor('the resumed hub lists every host at another hub', async () => {
      const l = await c.list(victim);
      return HOSTS.every((h) => l.find((x) => x.name === h && x.hub !== frozen.name));
    }, 20_000, 200);
    await sleep(3000); // room for any stale write the resumed hub might still try
    assert.match(frozen.daemon!.output(), /"msg":"this hub is current again[^"]*"/, 'the resumed hub knew it had been away before vouching for anything');
    assert.match(frozen.daemon!.output(), /"msg":"another hub took this host; dropping its session here"/);
    const rec = (await c.jobRecords()).find((r) => r.id === job)!;
    assert.equal(rec.state, 'success', `the resumed hub did not overwrite the result: ${JSON.stringify(rec)}`);
    assert.notEqual(rec.hub, frozen.name);
    // A trigger at the resumed hub reaches the host where it is now.
    const again = parse((await c.hubCli(victim, ['trigger', runner, '--json'], 60_000)).stdout);
    assert.equal(again.find((e) => e.ev === 'end')?.outcome, 'success', JSON.stringify(again));
    await checkJobs(c, [job, again.find((e) => e.ev === 'accepted')!.jobId!, ...(firstJob ? [firstJob] : [])]);
  } finally {
    await c.close();
  }
});
