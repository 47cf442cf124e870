// Nothing lost: an agent killed mid-job leaves the job interrupted (not
// running forever); a result finished while the hub was down is delivered on
// the next connection; a restarted hub gets every agent back within the
// backoff window.
//
// Each test sets up what it needs (its own host to kill, its own hub
// restart), so any one of them can run alone (--test-name-pattern).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { waitFor, sleep } from '../helpers/proc.js';
import { durableJobs } from '../helpers/state.js';

let fleet: TestFleet;
const SLOW = ['/bin/sh', '-c', 'echo "begin $1"; sleep 3; echo "end $1"', 'rebuild'];

const HOSTS = ['web1', 'web2', 'web3', 'kill1', 'kill2'];

before(async () => {
  fleet = await TestFleet.create({ heartbeatMs: 500 });
  await fleet.addHosts(HOSTS);
  await fleet.startHub();
  for (const n of HOSTS) fleet.startAgent(n, await fleet.agentConfig(n, { rebuildCommand: SLOW }));
  await fleet.waitConnected(HOSTS);
});
after(async () => { await fleet?.close(); });

interface Job { id: string; host: string; state: string; reason: string | null; exitCode: number | null }
async function jobs(): Promise<Job[]> {
  // What is on disk (the job journal), not what the hub says.
  return (await durableJobs(fleet.fleetDir)) as Job[];
}

/** Trigger a job on HOST and SIGKILL its agent while the job runs; resolves with the watching admin's result. */
async function killMidJob(host: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const agent = fleet.agents.get(host)!;
  const before = agent.output().length;
  const trigger = fleet.hubCli(['trigger', host, '--json']);
  // Running on the agent, not only sent to it: `list` shows a job from its dispatch on, and the agent
  // logs "job started" once it has marked the job running on its disk (what a restarted agent finds).
  await waitFor('job running', async () => (await fleet.list()).find((c) => c.name === host)?.['runningJob'], 5000);
  await waitFor('job started on the agent', () => agent.output().slice(before).includes('"msg":"job started"'), 5000);
  agent.child.kill('SIGKILL');
  await agent.exited;
  return trigger;
}

/** The agent's newest connection, and whether it relies on SSH keepalives (it knew the hub's period before connecting). */
function lastConnection(host: string): { at: number; keepalive: boolean } {
  const out = fleet.agents.get(host)!.output();
  const at = out.lastIndexOf('"msg":"connected to hub"');
  const line = out.slice(out.lastIndexOf('\n', at) + 1, out.indexOf('\n', at) === -1 ? undefined : out.indexOf('\n', at));
  return { at, keepalive: line.includes('"liveness":"ssh-keepalive"') };
}

/**
 * A connection on SSH keepalives alone: an agent's first connection uses
 * heartbeat messages (it learns the hub's period from the welcome), the next
 * one keepalives. So, unless HOST is already there, restart the hub once.
 */
async function onKeepalives(host: string): Promise<void> {
  if (lastConnection(host).keepalive) return;
  await fleet.stopHub('SIGKILL');
  await fleet.startHub();
  await fleet.waitConnected([host], 10_000);
  await waitFor(`${host} reconnected on keepalives`, () => lastConnection(host).keepalive || null, 10_000);
}

test('killing an agent mid-job marks the job interrupted, and the watching admin is told', async () => {
  const r = await killMidJob('kill1');
  assert.equal(r.code, 1, r.stderr);
  const end = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['ev'] === 'end');
  assert.equal(end?.['outcome'], 'interrupted');
  // The hub tells the end at once and writes it durably meanwhile (hub/jobs/job-end.ts): the
  // CLI may exit before that write lands, so wait for it (bounded) rather than read at once.
  const job = await waitFor('interrupted record on disk', async () => (await jobs()).find((j) => j.host === 'kill1' && j.state === 'interrupted') ?? null, 5000);
  assert.match(job.reason ?? '', /connection to the agent was lost/);
});

test('the restarted agent reports the job it was killed in as interrupted, from its own disk', async () => {
  await killMidJob('kill2');
  const agent = fleet.startAgent('kill2', path.join(fleet.dir, 'kill2.json'));
  // The agent says this as it starts, before it connects. Waiting for the hub
  // to list kill2 first could be satisfied by the killed agent's session
  // (the hub may not have seen it close yet on a loaded machine), leaving the
  // new agent's start-up inside this wait.
  await waitFor('agent replayed the interrupted result', () => agent.output().includes('found a job interrupted by an agent restart'), 10_000);
  await fleet.waitConnected(['kill2']);
  const job = (await jobs()).find((j) => j.host === 'kill2')!;
  await waitFor('job reason from the agent', async () => ((await jobs()).find((j) => j.id === job.id)?.reason ?? '').includes('agent stopped during the job'), 5000);
  // Acknowledged results leave the agent's outbox.
  await waitFor('outbox empty', async () => (await readdir(path.join(fleet.dir, 'state-kill2', 'outbox'))).length === 0, 5000);
});

test('a result finished while the hub was down is delivered when the agent reconnects', async () => {
  const r = await fleet.hubCli(['trigger', 'web2', '--json', '--action', 'test'], 2000).catch(() => null);
  void r; // the CLI is cut off with the hub; only the record matters here
  await waitFor('web2 job started', async () => (await jobs()).some((j) => j.host === 'web2' && j.state === 'running'), 5000);
  await fleet.stopHub('SIGKILL');
  await sleep(3500); // the job ends while the hub is down
  await fleet.startHub();
  await fleet.waitConnected(['web2']);
  await waitFor('web2 job success on the hub', async () => (await jobs()).some((j) => j.host === 'web2' && j.state === 'success' && j.exitCode === 0), 10_000);
});

test('after a hub restart every agent is back in list within the backoff window', async () => {
  await fleet.stopHub('SIGKILL');
  const t0 = Date.now();
  await fleet.startHub();
  await fleet.waitConnected(['web1', 'web2', 'web3'], 10_000);
  // backoff maxMs is 1000 in these configs: everyone is back well inside a few windows.
  assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
});

test('an agent on SSH keepalives alone (no heartbeat messages) stays connected', async () => {
  // A reconnected agent knows the hub's 500 ms period, so its connection uses
  // SSH keepalive@openssh.com, answered inside ssh2. The hub's sweep must see
  // those packets as life: 12 periods, no drop.
  await onKeepalives('web3');
  assert.ok(lastConnection('web3').keepalive, 'a reconnected agent uses SSH keepalives');
  const since = (await fleet.list()).find((c) => c.name === 'web3')?.['connectedSince'];
  const hubLog = fleet.hub!.output().length;
  await sleep(6000);
  const row = (await fleet.list()).find((c) => c.name === 'web3');
  assert.equal(row?.['connectedSince'], since, 'the same connection, never dropped');
  assert.ok(Date.now() - Date.parse(String(row?.['lastHeartbeat'])) < 2000, `lastHeartbeat follows the keepalives: ${String(row?.['lastHeartbeat'])}`);
  assert.doesNotMatch(fleet.hub!.output().slice(hubLog), /agent missed heartbeats/);
});

test('a dead hub is detected by unanswered SSH keepalives, not by waiting for TCP', async () => {
  await onKeepalives('web3');
  // SIGSTOP freezes the hub: sockets stay open but nothing answers.
  fleet.hub!.child.kill('SIGSTOP');
  const agent = fleet.agents.get('web3')!;
  const before = agent.output().length;
  // 500 ms keepalives, two to three periods: well under the 5 s allowed for a loaded machine.
  await waitFor('agent noticed the silent hub', () => agent.output().slice(before).includes('hub stopped answering SSH keepalives'), 5000);
  fleet.hub!.child.kill('SIGCONT');
  await fleet.waitConnected(['web3'], 10_000);
});
