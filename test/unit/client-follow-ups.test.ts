// What waits behind a running job on an agent (client/jobs/follow-ups.ts),
// with a real JobManager, real commands and a real outbox: a hub's job is
// never dropped by a local request or a pull crossing it (found by review:
// one shared follow-up slot replaced it, and its hub's record read
// "dispatched" until the agent reconnected); requests of one kind coalesce;
// a hub job replaced by another hub job is reported as not run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '../../common/platform/log.js';
import type { AgentMessage, JobEnd, JobStart } from '../../common/protocol/messages.js';
import { JobManager } from '../../client/jobs/manager.js';
import { tmpDir } from '../helpers/proc.js';

const hub = (n: number, action: JobStart['action'] = 'switch'): JobStart => ({ type: 'job.start', jobId: `hubjob${String(n).padStart(10, '0')}`, action });
const local = (n: number, action: JobStart['action'] = 'switch'): JobStart => ({ type: 'job.start', jobId: `local-${String(n).padStart(16, '0')}`, action });
const pull = (n: number, action: JobStart['action'] = 'switch'): JobStart => ({ type: 'job.start', jobId: `pull-${String(n).padStart(16, '0')}`, action });

interface Rig { m: JobManager; sent: AgentMessage[]; merges: string[]; runs(): Promise<string[]>; cleanup(): Promise<void> }

/** A manager whose rebuild takes 300 ms and writes "ACTION" to a file, one line per run. */
async function rig(): Promise<Rig> {
  const { dir, cleanup } = await tmpDir('bento-followups-');
  const sent: AgentMessage[] = [];
  const merges: string[] = [];
  const m = new JobManager({
    stateDir: path.join(dir, 'state'), host: 'web1', log: silentLogger(),
    rebuild: { rebuildCommand: ['/bin/sh', '-c', `sleep 0.3; echo "$1" >> ${path.join(dir, 'runs')}`, 'rebuild'], flake: null, configuration: null },
    rebuildEnv: {}, currentSystemLink: path.join(dir, 'no-system'), prebuilt: { cacheUrl: null, systemProfile: path.join(dir, 'no-profile') },
    hooks: [{ merged: (r, into) => { merges.push(`${r.jobId}>${into.jobId}`); } }],
    send: (msg) => { sent.push(msg); return true; },
  });
  await m.recover();
  const runs = async (): Promise<string[]> => (await readFile(path.join(dir, 'runs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { m, sent, merges, runs, cleanup };
}

const started = (sent: AgentMessage[]): string[] => sent.filter((x) => x.type === 'job.started').map((x) => (x as { jobId: string }).jobId);
const ended = (sent: AgentMessage[]): JobEnd[] => sent.filter((x): x is JobEnd => x.type === 'job.end');

/** Until nothing runs or waits (each run is 300 ms; a bound against a hang). */
async function drain(m: JobManager): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await m.idle();
    await new Promise((r) => setTimeout(r, 50));
    if (m.runningJobId === null) return;
  }
  throw new Error('the manager did not become idle');
}

test('a hub job waiting behind a local run is not dropped by a later local request or pull: it runs first, then the request', async () => {
  const r = await rig();
  try {
    r.m.onJobStart(local(1, 'boot'));
    r.m.onJobStart(hub(1, 'switch'));
    r.m.onJobStart(local(2, 'test'));
    r.m.onJobStart(pull(3, 'test'));
    await drain(r.m);
    assert.deepEqual(started(r.sent), [local(1).jobId, hub(1).jobId, pull(3).jobId], 'the hub job ran (before: replaced, never run nor reported)');
    assert.deepEqual(await r.runs(), ['boot', 'switch', 'test']);
    assert.deepEqual(r.merges, [`${local(2).jobId}>${pull(3).jobId}`], 'the two own requests coalesced');
    const h = ended(r.sent).find((e) => e.jobId === hub(1).jobId);
    assert.equal(h?.outcome, 'success', 'the hub hears its job\'s result');
  } finally {
    await r.cleanup();
  }
});

test('a local request with the waiting hub job\'s action is served by that run; a hub job takes over a waiting request of its action', async () => {
  const r = await rig();
  try {
    r.m.onJobStart(hub(1, 'boot'));
    r.m.onJobStart(hub(2, 'switch'));
    r.m.onJobStart(local(3, 'switch'));
    await drain(r.m);
    assert.deepEqual(started(r.sent), [hub(1).jobId, hub(2).jobId]);
    assert.deepEqual(r.merges, [`${local(3).jobId}>${hub(2).jobId}`]);

    r.m.onJobStart(hub(4, 'boot'));
    r.m.onJobStart(local(5, 'switch'));
    r.m.onJobStart(hub(6, 'switch'));
    await drain(r.m);
    assert.deepEqual(started(r.sent).slice(2), [hub(4).jobId, hub(6).jobId]);
    assert.deepEqual(r.merges.slice(1), [`${local(5).jobId}>${hub(6).jobId}`]);
    assert.deepEqual(await r.runs(), ['boot', 'switch', 'boot', 'switch'], 'one rebuild served each merged pair');
  } finally {
    await r.cleanup();
  }
});

test('a hub job replaced by another hub job while it waited is reported as not run, stored until acknowledged, and not run if sent again', async () => {
  const r = await rig();
  try {
    r.m.onJobStart(hub(1, 'boot'));
    r.m.onJobStart(hub(2, 'switch'));
    r.m.onJobStart(hub(3, 'test'));
    await drain(r.m);
    assert.deepEqual(started(r.sent), [hub(1).jobId, hub(3).jobId]);
    const two = ended(r.sent).find((e) => e.jobId === hub(2).jobId);
    assert.equal(two?.outcome, 'interrupted');
    assert.match(two?.reason ?? '', new RegExp(`not run: job ${hub(3).jobId} .*replaced it`));
    assert.ok((await r.m.unreportedIds()).includes(hub(2).jobId), 'in the outbox until the hub acknowledges it');
    r.m.onJobStart(hub(2, 'switch'));
    await drain(r.m);
    assert.deepEqual(await r.runs(), ['boot', 'test'], 'sent again later: not run');
  } finally {
    await r.cleanup();
  }
});
