// Three hubs on one 3-node NATS JetStream cluster, with real agents that list
// every hub: every hub sees the whole fleet (list with HUB, status, cluster
// status), a trigger at any hub reaches the hub holding the host and its
// output streams at the asking hub, coalescing holds across hubs, and a job
// queued at two hubs for an offline host is one job, run wherever the host
// lands. One cluster for the file (nothing here kills a part).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/proc.js';
import { checkJobs } from '../helpers/cluster-invariants.js';
import { parsePrometheusText } from '../../common/platform/prometheus.js';
import { parseEndpoint } from '../../client/net/endpoint.js';
import { rendezvous } from '../../client/net/endpoint-order.js';

let c: TestCluster;
const HOSTS = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
const QUICK = ['/bin/sh', '-c', 'for i in 1 2 3 4 5; do echo "line $i of $1"; done', 'rebuild'];
// Long enough for two more triggers (a CLI start each) while it runs, on a loaded machine.
const SLOW = ['/bin/sh', '-c', 'echo "begin $1"; sleep 6; echo "end $1"', 'rebuild'];
const accepted: string[] = [];

before(async () => {
  // The product's heartbeat (2 s; dead after 12 s), not the fault tests' 500 ms: nothing here kills a
  // part, and on CI's 2 cores, shared with another test file's cluster, a 3 s stall of one hub's beats
  // made another hub read its hosts as offline.
  c = await TestCluster.create({ hubs: 3, metrics: true, livenessMs: 2000 });
  await c.addHosts([...HOSTS, 'late', 'busy']);
  await c.startHubs();
  for (const h of HOSTS) c.startAgent(h, await c.agentConfig(h, { rebuildCommand: QUICK }));
  c.startAgent('busy', await c.agentConfig('busy', { rebuildCommand: SLOW }));
  await c.waitConnected([...HOSTS, 'busy']);
});
after(async () => { await c?.close(); });

interface TriggerEvent { ev: string; host?: string; jobId?: string; data?: string; disposition?: string; outcome?: string }
function events(stdout: string): TriggerEvent[] {
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as TriggerEvent);
}

test('every hub lists the whole fleet, each host at the one hub that holds it; the agents spread over the hubs', async () => {
  const views = await Promise.all([0, 1, 2].map((i) => c.list(i)));
  for (const v of views) assert.deepEqual(v.map((x) => x.name), [...HOSTS, 'busy'].sort());
  const byHost = new Map(views[0]!.map((x) => [x.name, x.hub]));
  const shown = JSON.stringify(views.map((v) => v.map((x) => `${x.name}@${x.hub}`)));
  for (const v of views.slice(1)) for (const x of v) assert.equal(x.hub, byHost.get(x.name), `${x.name}: every hub names the same holder: ${shown}`);
  // Each agent's first choice is its rendezvous hash over the endpoints, whose ports are random: about once
  // in 700 runs all 7 first choices are one hub, and then nothing can spread them.
  const endpoints = c.hubs.map((h) => parseEndpoint({ url: `ssh://127.0.0.1:${h.sshPort}` }));
  const firstChoices = new Set([...HOSTS, 'busy'].map((h) => rendezvous(h, endpoints, (e) => e.label)[0]!.port));
  assert.ok(new Set(byHost.values()).size >= Math.min(2, firstChoices.size), `7 agents with "spread" land on more than one hub: ${shown}`);
  const table = await c.hubCli(0, ['list']);
  assert.match(table.stdout, /^NAME\s+HUB\s+CARRIER/m);
});

test('a trigger at a hub that does not hold the host runs at the holder, and its output streams at the asking hub', async () => {
  const holder = (await c.holderAt(0, 'a1'))!;
  const asker = c.hubs.findIndex((h) => h.name !== holder);
  const r = await c.hubCli(asker, ['trigger', 'a1', '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const ev = events(r.stdout);
  const acc = ev.find((e) => e.ev === 'accepted')!;
  accepted.push(acc.jobId!);
  assert.equal(acc.disposition, 'dispatched');
  assert.deepEqual(ev.filter((e) => e.ev === 'output' && e.data!.startsWith('line ')).map((e) => e.data), [1, 2, 3, 4, 5].map((i) => `line ${i} of switch`), 'every line, in order, once');
  assert.equal(ev.find((e) => e.ev === 'end')?.outcome, 'success');
  const rec = (await c.jobRecords()).find((j) => j.id === acc.jobId)!;
  assert.equal(rec.hub, holder, 'the record was written by the holding hub');

  // `job ID` at every hub, the holder included: the shared record and its stored output, the same lines with their seqs.
  for (const i of [0, 1, 2]) {
    const j = await c.hubCli(i, ['job', acc.jobId!, '--json']);
    assert.equal(j.code, 0, `job at hub${i + 1}: ${j.stderr}${j.stdout}`);
    const je = events(j.stdout) as Array<TriggerEvent & { seq?: number; job?: { host: string; state: string } }>;
    const job = je.find((e) => e.ev === 'job')?.job;
    assert.deepEqual([job?.host, job?.state], ['a1', 'success'], `hub${i + 1}: the shared record`);
    const lines = je.filter((e) => e.ev === 'output' && e.data!.startsWith('line '));
    assert.deepEqual(lines.map((e) => e.data), [1, 2, 3, 4, 5].map((n) => `line ${n} of switch`), `hub${i + 1}: every stored line, in order, once`);
    assert.ok(lines.every((e, k) => k === 0 || e.seq! > lines[k - 1]!.seq!), 'seqs rise');
  }
});

/** Each hub's metrics, in hub order. */
async function metricsAtHubs(): Promise<Array<Map<string, number>>> {
  return Promise.all(c.hubs.map(async (h) => {
    const res = await fetch(h.metricsUrl!, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200, `${h.name} /metrics`);
    return parsePrometheusText(await res.text());
  }));
}

test('metrics: each hub counts the jobs it recorded and the sessions opened with it, so the sums over the hubs count each once', async () => {
  const SUCCESS = 'bento_jobs_total{outcome="success",action="switch"}';
  const before = await metricsAtHubs();
  const holder = (await c.holderAt(0, 'a2'))!;
  const h = c.hubs.findIndex((x) => x.name === holder);
  const asker = (h + 1) % c.hubs.length;
  const r = await c.hubCli(asker, ['trigger', 'a2', '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const acc = events(r.stdout).find((e) => e.ev === 'accepted')!;
  accepted.push(acc.jobId!);
  assert.equal(events(r.stdout).find((e) => e.ev === 'end')?.outcome, 'success');
  const after = await metricsAtHubs();
  assert.deepEqual(after.map((m, i) => (m.get(SUCCESS) ?? 0) - (before[i]!.get(SUCCESS) ?? 0)), c.hubs.map((_, i) => (i === h ? 1 : 0)), 'the job is counted at its holder only');
  // Every agent's session is counted at the hub it connected to: at least one each, summed over the hubs (a reconnect adds one).
  const sessions = after.reduce((a, m) => a + [...m].filter(([k]) => k.startsWith('bento_agent_connections_total')).reduce((x, [, v]) => x + v, 0), 0);
  const held = after.reduce((a, m) => a + [...m].filter(([k]) => k.startsWith('bento_hosts_connected{') && k.includes(`hub="`)).reduce((x, [, v]) => x + v, 0), 0);
  assert.ok(held >= 3 * (HOSTS.length + 1), `every hub's gauge shows the whole fleet's sessions (${held})`);
  const reconnects = after.reduce((a, m) => a + (m.get('bento_agent_reconnects_total') ?? 0), 0);
  assert.ok(sessions >= HOSTS.length + 1 && sessions <= HOSTS.length + 1 + reconnects + 3, `sessions counted once over the hubs: ${sessions}`);
});

test('trigger --all at one hub reaches every host wherever it is held', async () => {
  const r = await c.hubCli(2, ['trigger', '--all', '--json']);
  const ev = events(r.stdout);
  for (const e of ev.filter((x) => x.ev === 'accepted')) accepted.push(e.jobId!);
  const ends = ev.filter((e) => e.ev === 'end');
  assert.deepEqual(ends.map((e) => e.host).sort(), [...HOSTS, 'busy'].sort(), r.stdout);
  assert.ok(ends.every((e) => e.outcome === 'success'));
  assert.deepEqual(ev.filter((e) => e.ev === 'rejected').map((e) => e.host), ['late'], 'the one host with no agent is offline');
});

test('coalescing holds across hubs: one active and one pending job per host, whichever hub is asked', async () => {
  const first = c.hubCli(0, ['trigger', 'busy', '--json']);
  await waitFor('busy running', async () => (await c.list(1)).find((x) => x.name === 'busy')?.runningJob, 10_000, 100);
  const secondRun = c.hubCli(1, ['trigger', 'busy', '--json']);
  await waitFor('a pending job for busy', async () => {
    const st = JSON.parse((await c.hubCli(2, ['status', 'busy', '--json'])).stdout) as { hosts: Array<{ queuedJob: unknown }> };
    return st.hosts[0]?.queuedJob;
  }, 10_000, 100);
  const third = events((await c.hubCli(2, ['trigger', 'busy', '--json'])).stdout).find((e) => e.ev === 'accepted')!;
  const second = events((await secondRun).stdout).find((e) => e.ev === 'accepted')!;
  assert.equal(second.disposition, 'queued');
  assert.equal(third.disposition, 'coalesced');
  assert.equal(third.jobId, second.jobId, 'the third trigger joins the pending job, asked at another hub');
  const one = events((await first).stdout).find((e) => e.ev === 'accepted')!;
  accepted.push(one.jobId!, second.jobId!);
  await waitFor('the follow-up ran', async () => (await c.jobRecords()).find((j) => j.id === second.jobId)?.state === 'success', 20_000, 200);
});

test('--queue for an offline host at two hubs is one job; it runs once, at the hub the host reaches', async () => {
  const q1 = events((await c.hubCli(0, ['trigger', 'late', '--queue', '--json'])).stdout).find((e) => e.ev === 'accepted')!;
  const q2 = events((await c.hubCli(1, ['trigger', 'late', '--queue', '--json'])).stdout).find((e) => e.ev === 'accepted')!;
  assert.equal(q1.disposition, 'queued');
  assert.equal(q2.jobId, q1.jobId, 'the same queued job, whichever hub was asked');
  assert.equal(q2.disposition, 'coalesced');
  accepted.push(q1.jobId!);
  // Followed at a hub the host will not connect to (issue 17): `job ID --follow` waits for it, then streams it to its end
  // (the stored lines and the live ones join on their seq, so when the CLI gets there does not matter).
  const following = c.hubCli(2, ['job', q1.jobId!, '--follow', '--json'], 60_000);
  // This agent lists one hub only: the welcome names the others, and the agent says so.
  const late = c.startAgent('late', await c.agentConfig('late', { rebuildCommand: QUICK }, [0]));
  await waitFor('the queued job ran', async () => (await c.jobRecords()).find((j) => j.id === q1.jobId)?.state === 'success', 20_000, 200);
  const f = await following;
  assert.equal(f.code, 0, f.stderr + f.stdout);
  const fe = events(f.stdout);
  assert.equal(fe[0]?.ev, 'job', 'the record first');
  assert.deepEqual(fe.filter((e) => e.ev === 'output' && e.data!.startsWith('line ')).map((e) => e.data), [1, 2, 3, 4, 5].map((n) => `line ${n} of switch`), 'followed from another hub: every line, once');
  assert.equal(fe.find((e) => e.ev === 'end')?.outcome, 'success');
  const warned = await waitFor('the agent names the hubs it does not list', () => late.output().split('\n').find((l) => l.includes('does not list')), 5000);
  assert.deepEqual((JSON.parse(warned) as { hubs: string[] }).hubs, [c.hubs[1]!, c.hubs[2]!].map((h) => `ssh://127.0.0.1:${h.sshPort}`).sort());
});

test('status and cluster status at any hub; every accepted job ended once, the same at every hub', async () => {
  const s = JSON.parse((await c.hubCli(1, ['cluster', 'status', '--json'])).stdout) as { clustered: boolean; hubs: Array<{ name: string; alive: boolean; agents: number }>; nats: { streams: Array<{ name: string; replicas: unknown[] }> } };
  assert.equal(s.clustered, true);
  assert.deepEqual(s.hubs.map((h) => [h.name, h.alive]), [['hub1', true], ['hub2', true], ['hub3', true]]);
  assert.equal(s.hubs.reduce((n, h) => n + h.agents, 0), HOSTS.length + 2);
  assert.ok(s.nats.streams.every((st) => st.replicas.length === 3), JSON.stringify(s.nats.streams));
  await checkJobs(c, accepted);
});
