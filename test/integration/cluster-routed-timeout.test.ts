// A trigger at hub B for a host hub A holds, while A is too slow to answer
// within the route timeout (docs/cluster.md "Routing a trigger"): real hubs
// on a real 3-node NATS cluster, A frozen with SIGSTOP while the request
// waits in its socket, as a hub stuck for seconds on a store write would be.
// Before the fix B told the admin "refused" (CLUSTER_UNAVAILABLE) at the
// first timeout, and A ran the job once resumed: the admin was told a job
// that ran had been refused, and `--wait` did not follow it. Now B asks
// again with the same request id: A resumed within that repeat answers it
// with the job it took (B follows it to its end); A still frozen after the
// repeat makes B say TRIGGER_UNCONFIRMED (exit 10), naming the job id it
// runs under. Never a refusal, and the job runs once either way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/proc.js';
import { checkJobs } from '../helpers/cluster-invariants.js';

const ROUTE_TIMEOUT_MS = 2000;
const QUICK = ['/bin/sh', '-c', 'echo "ran $1"', 'rebuild'];
let c: TestCluster;
const accepted: string[] = [];

before(async () => {
  // Long heartbeats, so a few seconds of SIGSTOP make A neither dead to B (6 beats) nor out of its lease when
  // resumed (3 beats), and its agent does not leave it (2.5 agent heartbeats): only the route timeout is at play.
  c = await TestCluster.create({ hubs: 2, livenessMs: 5000, heartbeatMs: 8000, clusterExtra: { routeTimeoutMs: ROUTE_TIMEOUT_MS } });
  await c.addHosts(['r1', 'r2']);
  await c.startHubs();
  // Both agents list only hub A (hub 0): A holds them throughout.
  for (const h of ['r1', 'r2']) c.startAgent(h, await c.agentConfig(h, { rebuildCommand: QUICK }, [0]));
  await c.waitConnected(['r1', 'r2']);
  for (const h of ['r1', 'r2']) assert.equal(await c.holderAt(1, h), 'hub1');
});
after(async () => { await c?.close(); });

interface Ev { ev: string; host?: string; jobId?: string; code?: string; message?: string; outcome?: string }
const parse = (out: string): Ev[] => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev);

/**
 * Freeze A, trigger HOST at B, and resume A once B's log shows STAGE (or the
 * trigger command ended: the old code refused at the first timeout).
 * Returns the command's events, exit code, and the host's jobs that ran.
 */
async function frozenTrigger(host: string, stage: RegExp): Promise<{ ev: Ev[]; code: number; ran: string[] }> {
  const a = c.hubs[0]!.daemon!;
  const b = c.hubs[1]!.daemon!;
  const agent = c.agents.get(host)!;
  const agentFrom = agent.output().length;
  const bFrom = b.output().length;
  const known = new Set((await c.jobRecords()).map((j) => j.id));
  let ended = false;
  a.child.kill('SIGSTOP');
  let run: Promise<{ code: number; stdout: string; stderr: string }>;
  try {
    run = c.hubCli(1, ['trigger', host, '--json'], 90_000);
    void run.then(() => { ended = true; });
    await waitFor(`B's log: ${stage}, or the trigger ended`, () => ended || stage.test(b.output().slice(bFrom)), 30_000, 25);
  } finally {
    a.child.kill('SIGCONT');
  }
  const r = await run;
  // Whatever B said, what A took runs now: wait for it, and for anything else that would run.
  const jobs = await waitFor(`${host}'s job ended`, async () => {
    const mine = (await c.jobRecords()).filter((j) => j.host === host && !known.has(j.id));
    return mine.length > 0 && mine.every((j) => j.state === 'success') ? mine : null;
  }, 30_000, 250);
  await new Promise((res) => setTimeout(res, ROUTE_TIMEOUT_MS)); // room for a second job, if anything started one
  const starts = agent.output().slice(agentFrom).split('\n').filter((l) => l.includes('"msg":"job started"'));
  assert.equal(starts.length, 1, `the agent ran one job:\n${starts.join('\n')}`);
  const after = (await c.jobRecords()).filter((j) => j.host === host && !known.has(j.id));
  assert.deepEqual(after.map((j) => j.id), jobs.map((j) => j.id), 'one job recorded for the trigger');
  return { ev: parse(r.stdout), code: r.code, ran: after.map((j) => j.id) };
}

test('A answers only after the route timeout, within B\'s repeat: the admin is told the job A took and follows it to its end', async (t) => {
  const { ev, code, ran } = await frozenTrigger('r1', /asking once more with the same request id/);
  const rejected = ev.find((e) => e.ev === 'rejected');
  t.diagnostic(rejected ? `told ${rejected.code}` : 'answered through the repeat');
  assert.ok(!rejected || rejected.code === 'TRIGGER_UNCONFIRMED', `refused while the job ran (${ran.join(', ')}): ${JSON.stringify(rejected)}`);
  if (rejected) {
    // A loaded machine may resume A too late for the repeat: then the message names the job that ran.
    assert.equal(code, 10);
    assert.match(rejected.message ?? '', new RegExp(`runs as job ${ran[0]}`));
  } else {
    const acc = ev.find((e) => e.ev === 'accepted');
    assert.equal(acc?.jobId, ran[0], `the admin is told the job that runs: ${JSON.stringify(ev)}`);
    assert.equal(ev.find((e) => e.ev === 'end')?.outcome, 'success', 'and follows it to its end');
    assert.equal(code, 0);
  }
  accepted.push(...ran);
});

test('A frozen past the repeat as well: TRIGGER_UNCONFIRMED (exit 10) naming the job id, never "refused"; the job runs once', async () => {
  const { ev, code, ran } = await frozenTrigger('r2', /a routed trigger is unconfirmed/);
  const rejected = ev.find((e) => e.ev === 'rejected');
  assert.equal(rejected?.code, 'TRIGGER_UNCONFIRMED', `told about the job that ran (${ran.join(', ')}): ${JSON.stringify(ev)}`);
  assert.equal(code, 10);
  assert.match(rejected!.message!, new RegExp(`runs as job ${ran[0]}.*bento-hub status r2`));
  accepted.push(...ran);
  await checkJobs(c, accepted);
});
