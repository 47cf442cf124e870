// Issue 13 part 5: two agents on one state directory. Real bento-client
// processes against a real hub: the second agent on a stateDir refuses to
// start (STATE_DIR_LOCKED); a result saved by another host's agent is neither
// replayed nor deleted; the hub does not acknowledge a result for another
// host's job; and an outbox holding more results than a hello can name is cut
// to its bound (oldest first) instead of keeping the agent out forever.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { rawAgent, helloFor } from '../helpers/raw-agent.js';
import { waitFor, type Daemon } from '../helpers/proc.js';
import { durableJobs } from '../helpers/state.js';
import { MAX_UNREPORTED } from '../../common/protocol/messages.js';

let fleet: TestFleet;
const ECHO = ['/bin/echo', 'rebuilt'];

before(async () => {
  fleet = await TestFleet.create({ heartbeatMs: 500 });
  await fleet.addHosts(['web1', 'web2', 'web3', 'web4']);
  await fleet.startHub();
});
after(async () => { await fleet?.close(); });

async function records(): Promise<Map<string, { host: string; state: string }>> {
  const recs = await durableJobs(fleet.fleetDir);
  return new Map(recs.map((r) => [r.id, r]));
}

/** A result as an agent saves it in STATE/outbox/ID.json (`host` absent: the format before names were saved). */
function result(jobId: string, startedAt: Date, host?: string, extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify({
    type: 'job.end', jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: startedAt.toISOString(), durationMs: 1000,
    ...extra, ...(host ? { host } : {}),
  })}\n`;
}

function exitWithin(d: Daemon, ms: number): Promise<number | null | 'running'> {
  return Promise.race([d.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), ms).unref())]);
}

test('a second agent on the same stateDir refuses to start with STATE_DIR_LOCKED, naming the directory and the PID; kill -9 frees it', async () => {
  const shared = path.join(fleet.dir, 'shared-state');
  // Unique names in fleet.agents: close() stops every one, even after a failed assertion.
  const first = fleet.startAgent('web1-shared', await fleet.agentConfig('web1', { stateDir: shared, rebuildCommand: ECHO }));
  await fleet.waitConnected(['web1']);
  const cfg2 = await fleet.agentConfig('web2', { stateDir: shared, rebuildCommand: ECHO });
  const second = fleet.startAgent('web2-shared', cfg2);
  const code = await exitWithin(second, 15_000);
  await second.stop();
  assert.equal(code, 6, `the second agent must refuse to start:\n${second.output().slice(-2000)}`);
  const out = second.output();
  assert.match(out, /\[STATE_DIR_LOCKED\]/);
  assert.ok(out.includes(`state directory ${shared} is in use by PID ${first.child.pid} (host "web1")`), out);
  assert.ok(!(await fleet.list()).some((c) => c.name === 'web2'), 'the second agent never connected');

  // The first is untouched and still serves jobs.
  const r = await fleet.hubCli(['trigger', 'web1', '--action', 'build']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rebuilt build/);

  // kill -9 leaves no stale lock: the kernel let go with the process.
  first.child.kill('SIGKILL');
  await first.exited;
  const again = fleet.startAgent('web2-shared-again', cfg2);
  await fleet.waitConnected(['web2']);
  assert.equal(again.child.exitCode, null);
  await again.stop();
  await waitFor('web2 gone', async () => !(await fleet.list()).some((c) => c.name === 'web2'), 10_000);
});

test('a result saved by another host\'s agent is neither replayed nor deleted; an unnamed (older) one is replayed', async () => {
  const stateDir = path.join(fleet.dir, 'state-web3');
  const outbox = path.join(stateDir, 'outbox');
  await mkdir(outbox, { recursive: true });
  const t = Date.now() - 60_000;
  // The foreign one is older, so an agent that replayed it would send it first.
  const foreign = result('foreignJob0001', new Date(t), 'web4');
  await writeFile(path.join(outbox, 'foreignJob0001.json'), foreign);
  await writeFile(path.join(outbox, 'legacyJob00001.json'), result('legacyJob00001', new Date(t + 1000)));
  const agent = fleet.startAgent('web3', await fleet.agentConfig('web3', { rebuildCommand: ECHO }));
  await fleet.waitConnected(['web3']);
  // Replays go in order and the hub answers one host's messages in order:
  // once the unnamed result is acknowledged, a replayed foreign one would have been handled.
  await waitFor('the unnamed result acknowledged', async () => !(await readdir(outbox)).includes('legacyJob00001.json'), 10_000);
  const recs = await records();
  assert.deepEqual([recs.get('legacyJob00001')?.host, recs.get('legacyJob00001')?.state], ['web3', 'success'], 'the unnamed result counts as this host\'s');
  assert.equal(recs.has('foreignJob0001'), false, 'the foreign result never reached the hub');
  assert.equal(await readFile(path.join(outbox, 'foreignJob0001.json'), 'utf8'), foreign, 'and it is still on disk, unchanged');
  await waitFor('agent logged it', () => agent.output().includes('saved by another host'), 5000);
  await agent.stop();
});

test('the hub does not acknowledge a result for another host\'s job, and logs both names', async () => {
  const agent = fleet.startAgent('web1', await fleet.agentConfig('web1', { rebuildCommand: ECHO }));
  await fleet.waitConnected(['web1']);
  const t = await fleet.hubCli(['trigger', 'web1', '--action', 'build', '--json']);
  assert.equal(t.code, 0, t.stderr);
  const jobId = t.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['ev'] === 'accepted')?.['jobId'] as string;
  assert.ok(jobId, t.stdout);
  assert.equal((await records()).get(jobId)?.state, 'success');

  const hubLogFrom = fleet.hub!.output().length;
  const raw = await rawAgent({ port: fleet.sshPort, name: 'web2', keyPath: fleet.keys.get('web2')!.keyPath });
  try {
    const send = (o: object): void => { raw.channel.write(`${JSON.stringify(o)}\n`); };
    raw.channel.write(helloFor('web2'));
    const startedAt = new Date().toISOString();
    send({ type: 'job.end', jobId, action: 'build', outcome: 'failure', exitCode: 1, startedAt, durationMs: 5, replayed: true });
    // A job the hub truly does not know is still adopted and acknowledged: after its ack
    // (same host, answered in order) the hub has handled the foreign one.
    send({ type: 'job.end', jobId: 'web2OwnJob0001', action: 'build', outcome: 'success', exitCode: 0, startedAt, durationMs: 5, replayed: true });
    await waitFor('ack of the unknown own job', () => raw.received().includes('"job.ack","jobId":"web2OwnJob0001"'), 10_000);
    assert.ok(!raw.received().includes(`"jobId":"${jobId}"`), `no ack for web1's job: ${raw.received()}`);
    await waitFor('hub logged the refusal', () => fleet.hub!.output().slice(hubLogFrom).includes(`refused a result from \\"web2\\" for a job of \\"web1\\"`), 5000);
  } finally {
    raw.end();
  }
  const recs = await records();
  assert.deepEqual([recs.get(jobId)?.host, recs.get(jobId)?.state], ['web1', 'success'], 'web1\'s record is untouched');
  assert.deepEqual([recs.get('web2OwnJob0001')?.host, recs.get('web2OwnJob0001')?.state], ['web2', 'success']);
  await agent.stop();
});

test(`an outbox with more results than a hello can name (${MAX_UNREPORTED}) drops the oldest and connects`, async () => {
  const stateDir = path.join(fleet.dir, 'state-web4');
  const outbox = path.join(stateDir, 'outbox');
  await mkdir(outbox, { recursive: true });
  // Left by an agent whose hub never acknowledged (an older agent had no bound).
  const n = MAX_UNREPORTED + 44;
  const t0 = Date.now() - 3600_000;
  const ids = Array.from({ length: n }, (_, i) => `bulk${String(i).padStart(6, '0')}`);
  for (const [i, id] of ids.entries()) await writeFile(path.join(outbox, `${id}.json`), result(id, new Date(t0 + i * 1000)));
  const agent = fleet.startAgent('web4', await fleet.agentConfig('web4', { rebuildCommand: ECHO }));
  await fleet.waitConnected(['web4']);
  const droppedLines = (): string[] => agent.output().split('\n').filter((l) => l.includes('outbox full'));
  // Logged before the first connection; the pipe may trail a little.
  await waitFor('drop lines', () => droppedLines().length >= 44, 5000).catch(() => undefined);
  const dropped = droppedLines();
  assert.equal(dropped.length, 44, `one log line per dropped result:\n${agent.output().slice(-3000)}`);
  for (const id of ids.slice(0, 44)) assert.ok(dropped.some((l) => l.includes(`"jobId":"${id}"`)), `${id} (among the oldest) dropped`);
  const recs = await records();
  for (const id of ids.slice(0, 44)) assert.equal(recs.has(id), false, `${id} was dropped before any hello`);
  await waitFor('the newest result reached the hub', async () => (await records()).get(ids[n - 1]!)?.host === 'web4', 15_000);
  await agent.stop();
});
