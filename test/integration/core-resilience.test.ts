// Nothing lost: an agent killed mid-job leaves the job interrupted (not
// running forever); a result finished while the hub was down is delivered on
// the next connection; a restarted hub gets every agent back within the
// backoff window.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { waitFor, sleep } from '../helpers/proc.js';
import { durableJobs } from '../helpers/state.js';

let fleet: TestFleet;
const SLOW = ['/bin/sh', '-c', 'echo "begin $1"; sleep 3; echo "end $1"', 'rebuild'];

before(async () => {
  fleet = await TestFleet.create({ heartbeatMs: 500 });
  for (const n of ['web1', 'web2', 'web3']) await fleet.addHost(n);
  await fleet.startHub();
  for (const n of ['web1', 'web2', 'web3']) fleet.startAgent(n, await fleet.agentConfig(n, { rebuildCommand: SLOW }));
  await fleet.waitConnected(['web1', 'web2', 'web3']);
});
after(async () => { await fleet?.close(); });

interface Job { id: string; host: string; state: string; reason: string | null; exitCode: number | null }
async function jobs(): Promise<Job[]> {
  // What is on disk (the job journal), not what the hub says.
  return (await durableJobs(fleet.fleetDir)) as Job[];
}

test('killing an agent mid-job marks the job interrupted, and the watching admin is told', async () => {
  const trigger = fleet.hubCli(['trigger', 'web1', '--json']);
  await waitFor('job running', async () => (await fleet.list()).find((c) => c.name === 'web1')?.['runningJob'], 5000);
  fleet.agents.get('web1')!.child.kill('SIGKILL');
  const r = await trigger;
  assert.equal(r.code, 1, r.stderr);
  const end = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['ev'] === 'end');
  assert.equal(end?.['outcome'], 'interrupted');
  const job = (await jobs()).find((j) => j.host === 'web1')!;
  assert.equal(job.state, 'interrupted');
  assert.match(job.reason ?? '', /connection to the agent was lost/);
});

test('the restarted agent reports the job it was killed in as interrupted, from its own disk', async () => {
  const agent = fleet.startAgent('web1', path.join(fleet.dir, 'web1.json'));
  await fleet.waitConnected(['web1']);
  await waitFor('agent replayed the interrupted result', () => agent.output().includes('found a job interrupted by an agent restart'), 5000);
  const job = (await jobs()).find((j) => j.host === 'web1')!;
  await waitFor('job reason from the agent', async () => ((await jobs()).find((j) => j.id === job.id)?.reason ?? '').includes('agent stopped during the job'), 5000);
  // Acknowledged results leave the agent's outbox.
  await waitFor('outbox empty', async () => (await readdir(path.join(fleet.dir, 'state-web1', 'outbox'))).length === 0, 5000);
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
  // After the restarts above, the agents know the hub's 500 ms period, so their
  // connections use SSH keepalive@openssh.com, answered inside ssh2. The hub's
  // sweep must see those packets as life: 12 periods, no drop.
  const agent = fleet.agents.get('web3')!;
  assert.match(agent.output(), /"liveness":"ssh-keepalive"/, 'a reconnected agent uses SSH keepalives');
  const since = (await fleet.list()).find((c) => c.name === 'web3')?.['connectedSince'];
  const hubLog = fleet.hub!.output().length;
  await sleep(6000);
  const row = (await fleet.list()).find((c) => c.name === 'web3');
  assert.equal(row?.['connectedSince'], since, 'the same connection, never dropped');
  assert.ok(Date.now() - Date.parse(String(row?.['lastHeartbeat'])) < 2000, `lastHeartbeat follows the keepalives: ${String(row?.['lastHeartbeat'])}`);
  assert.doesNotMatch(fleet.hub!.output().slice(hubLog), /agent missed heartbeats/);
});

test('a dead hub is detected by unanswered SSH keepalives, not by waiting for TCP', async () => {
  // SIGSTOP freezes the hub: sockets stay open but nothing answers.
  fleet.hub!.child.kill('SIGSTOP');
  const agent = fleet.agents.get('web3')!;
  const before = agent.output().length;
  // 500 ms keepalives, two to three periods: well under the 5 s allowed for a loaded machine.
  await waitFor('agent noticed the silent hub', () => agent.output().slice(before).includes('hub stopped answering SSH keepalives'), 5000);
  fleet.hub!.child.kill('SIGCONT');
  await fleet.waitConnected(['web3'], 10_000);
});
