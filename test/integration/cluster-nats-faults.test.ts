// NATS failing under a cluster of hubs: kill -9 of one NATS server of three
// (routing resumes within seconds), then NATS entirely unreachable (agents
// stay connected and hold their results; a hub refuses triggers with
// CLUSTER_UNAVAILABLE, since it cannot record them nor vouch that it still
// holds the host; once NATS is back the held results are recorded and
// acknowledged). One cluster for the file; the tests run in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TestCluster } from '../helpers/cluster.js';
import { freePort, sleep, spawnDaemon, waitFor } from '../helpers/proc.js';
import { HUB_BIN, TestFleet } from '../helpers/fleet.js';
import { checkJobs } from '../helpers/cluster-invariants.js';

// $1 is the action: a switch runs 6 s, long enough on a loaded machine for a follow-up to queue behind it; others 3 s.
const SLOW = ['/bin/sh', '-c', 'echo "begin $1"; case "$1" in switch) sleep 6 ;; *) sleep 3 ;; esac; echo "end $1"', 'rebuild'];
const HOSTS = ['n1', 'n2', 'n3', 'n4'];
let c: TestCluster;
const accepted: string[] = [];

interface Ev { ev: string; host?: string; jobId?: string; code?: string; outcome?: string }
const parse = (out: string): Ev[] => out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev);

before(async () => {
  c = await TestCluster.create({ hubs: 3 });
  await c.addHosts(HOSTS);
  await c.startHubs();
  for (const h of HOSTS) c.startAgent(h, await c.agentConfig(h, { rebuildCommand: SLOW }));
  await c.waitConnected(HOSTS);
});
after(async () => { await c?.close(); });

/** A host, the hub holding it, and another hub to ask. */
async function routed(): Promise<{ host: string; holder: number; asker: number }> {
  const l = await c.list(0);
  const x = l.find((e) => e.name === 'n1')!;
  const holder = c.hubs.findIndex((h) => h.name === x.hub);
  return { host: 'n1', holder, asker: (holder + 1) % 3 };
}

/**
 * One `trigger HOST --json --action test` at hub ASKER, and when its
 * "accepted" line came (ms since T0; -1: never). Timed from the line, not
 * from the command's end, which also waits for the job (3 s).
 */
async function timedTrigger(asker: number, host: string, t0: number): Promise<{ events: Ev[]; acceptedAt: number; text: string }> {
  const cli = spawnDaemon('trigger', process.execPath, [HUB_BIN, 'trigger', host, '--json', '--action', 'test', '--dir', c.hubs[asker]!.fleetDir]);
  let acceptedAt = -1;
  cli.child.stdout?.on('data', () => { if (acceptedAt < 0 && cli.output().includes('"ev":"accepted"')) acceptedAt = Date.now() - t0; });
  const timer = setTimeout(() => { void cli.stop(); }, 30_000);
  await cli.exited;
  clearTimeout(timer);
  const text = cli.output();
  const events = text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev);
  return { events, acceptedAt, text };
}

test('kill -9 of one NATS server of three: a trigger routed between hubs works again within seconds', async () => {
  const { host, asker } = await routed();
  // The server leading the holds bucket: the worst one to lose (claims, heartbeats and leases wait for a new leader).
  const victim = await c.nats.streamLeader(`KV_${c.prefix}_holds`);
  await c.nats.kill(victim);
  try {
    const t0 = Date.now();
    let ok: Ev | undefined;
    let acceptedAfter = -1;
    // What each attempt got, for the failure message: when it began, then its events or its error.
    const attempts: string[] = [];
    for (let i = 0; i < 60 && Date.now() - t0 < 30_000; i++) {
      const began = Date.now() - t0;
      const r = await timedTrigger(asker, host, t0);
      attempts.push(`+${began} ms: ${r.events.filter((e) => e.ev).map((e) => e.code ? `${e.ev} ${e.code}` : e.ev).join(', ') || r.text.trim().split('\n').at(-1)}`);
      if (acceptedAfter < 0 && r.acceptedAt >= 0) acceptedAfter = r.acceptedAt;
      for (const e of r.events) if (e.ev === 'accepted') accepted.push(e.jobId!);
      ok = r.events.find((e) => e.ev === 'end' && e.outcome === 'success');
      if (ok) break;
      await sleep(250);
    }
    const took = Date.now() - t0;
    assert.ok(ok, `no routed trigger succeeded within 30 s of the kill:\n${attempts.join('\n')}`);
    process.stdout.write(`# after kill -9 of the holds leader: a routed trigger accepted after ${acceptedAfter} ms, its job done after ${took} ms; attempts: ${attempts.join(' | ')}\n`);
    assert.ok(acceptedAfter >= 0 && acceptedAfter < 15_000, `routing took ${acceptedAfter} ms:\n${attempts.join('\n')}`);
  } finally {
    // Restarted whatever happened above: the next tests need all three.
    await c.nats.restart(victim);
  }
  await checkJobs(c, accepted);
});

test('NATS entirely unreachable: agents stay connected and keep their results; triggers are refused with CLUSTER_UNAVAILABLE; all recorded once NATS is back', async () => {
  const { host, holder } = await routed();
  const run = c.hubCli(holder, ['trigger', host, '--json'], 90_000);
  await waitFor(`${host} running`, async () => (await c.list(holder)).find((x) => x.name === host)?.runningJob, 10_000, 100);
  const job = await waitFor('job id', async () => (await c.list(holder)).find((x) => x.name === host)?.runningJob as { jobId: string } | undefined, 5000);
  accepted.push(job.jobId);
  // A follow-up queued behind the running job: while the hub cannot record
  // its dispatch it must not be sent (the agent would run a job every view
  // shows queued, and it was sent again later: the soak); once NATS is back it runs once.
  const followRun = c.hubCli(holder, ['trigger', host, '--json', '--action', 'test'], 120_000);
  const follow = await waitFor('the follow-up queued', async () => (await c.list(holder)).find((x) => x.name === host)?.queuedJob as { jobId: string } | undefined, 10_000, 100);
  accepted.push(follow.jobId);
  const agentLog = c.agents.get(host)!;
  const before = agentLog.output().length;
  for (let i = 0; i < 3; i++) await c.nats.kill(i);
  // The job ends during the outage: the hub cannot record it, so it does not acknowledge it, and the agent keeps its result.
  const outbox = path.join(c.dir, `state-${host}`, 'outbox');
  await waitFor('the job to end during the outage (its result in the agent\'s outbox)', async () => (await readdir(outbox).catch(() => [])).some((f) => f.startsWith(job.jobId)), 20_000, 100);
  // Where the hub would send the next job once the first ended (it did not wait for NATS before the fix).
  await sleep(1500);
  assert.ok(!agentLog.output().slice(before).includes(follow.jobId), 'the follow-up was not sent while the hub could not record it');
  const refused = parse((await c.hubCli(holder, ['trigger', 'n2', '--json', '--queue'], 30_000)).stdout);
  assert.equal(refused.find((e) => e.ev === 'rejected')?.code, 'CLUSTER_UNAVAILABLE', JSON.stringify(refused));
  const own = (await c.list(holder)).map((x) => x.name);
  assert.ok(own.includes(host), 'the hub still lists the agents connected to it');
  assert.ok(!agentLog.output().slice(before).includes('disconnected from hub'), 'the agent stayed connected');
  assert.deepEqual((await readdir(outbox)).filter((f) => f.startsWith(job.jobId)).length, 1, 'the agent holds its result: the hub could not record it, so it did not acknowledge it');
  await c.nats.restartAll();
  const ev = parse((await run).stdout);
  assert.equal(ev.find((e) => e.ev === 'end')?.outcome, 'success');
  const fev = parse((await followRun).stdout);
  assert.equal(fev.find((e) => e.ev === 'end')?.outcome, 'success', JSON.stringify(fev));
  await checkJobs(c, accepted, { timeoutMs: 60_000, expect: { [job.jobId]: 'success', [follow.jobId]: 'success' } });
  const starts = agentLog.output().split('\n').filter((l) => l.includes('job started') && l.includes(follow.jobId));
  assert.equal(starts.length, 1, `the follow-up ran once: ${starts.join('\n')}`);
  await waitFor('the agent\'s outbox is empty (acknowledged once recorded)', async () => (await readdir(outbox)).length === 0, 15_000, 200);
  // And the cluster routes again.
  const again = parse((await c.hubCli((holder + 1) % 3, ['trigger', host, '--json', '--action', 'test'], 60_000)).stdout);
  assert.equal(again.find((e) => e.ev === 'end')?.outcome, 'success', JSON.stringify(again));
  accepted.push(again.find((e) => e.ev === 'accepted')!.jobId!);
  await checkJobs(c, accepted);
});

test('a hub that cannot reach NATS at start says so (CLUSTER_UNAVAILABLE, exit 1) and leaves nothing behind; a bad cluster section is CONFIG_INVALID naming the field', async () => {
  const f = await TestFleet.create({ hubSettings: { cluster: { servers: [`nats://127.0.0.1:${await freePort()}`], hubName: 'lonely', connectTimeoutMs: 1000 } } });
  try {
    const r = await f.hubCli(['serve'], 30_000);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /CLUSTER_UNAVAILABLE/);
    assert.match(r.stderr, /cannot connect to NATS/);
    assert.equal(existsSync(path.join(f.fleetDir, 'hub.sock')), false, 'no admin socket left');
    const hubJson = path.join(f.fleetDir, 'hub.json');
    await writeFile(hubJson, JSON.stringify({ ...JSON.parse(await readFile(hubJson, 'utf8')), cluster: { servers: ['http://x:1'], hubName: 'lonely' } }));
    const bad = await f.hubCli(['serve'], 30_000);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /hub\.json: cluster\.servers\[0\]: scheme must be nats:\/\/ or tls:\/\/.*\[CONFIG_INVALID\]/);
  } finally {
    await f.close();
  }
});
