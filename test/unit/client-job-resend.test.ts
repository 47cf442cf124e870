// A job.start for a job this host already ran is not run again
// (client/jobs/manager.ts): after kill -9 of a hub, the short soak saw a job
// sent to its agent twice (docs/cluster.md, Open points), and a real agent
// whose job had ended ran it a second time. Real commands, a real outbox
// on disk; the rebuild counts its runs in a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '../../common/platform/log.js';
import type { AgentMessage, JobStart } from '../../common/protocol/messages.js';
import { JobManager } from '../../client/jobs/manager.js';
import { tmpDir } from '../helpers/proc.js';

const job = (n: number): JobStart => ({ type: 'job.start', jobId: `resendjob${String(n).padStart(7, '0')}`, action: 'switch' });

function manager(dir: string, sent: AgentMessage[]): JobManager {
  return new JobManager({
    stateDir: path.join(dir, 'state'), host: 'web1', log: silentLogger(),
    rebuild: { rebuildCommand: ['/bin/sh', '-c', `echo "$1" >> ${path.join(dir, 'runs')}`, 'rebuild'], flake: null, configuration: null },
    rebuildEnv: {}, currentSystemLink: path.join(dir, 'no-system'), prebuilt: { cacheUrl: null, systemProfile: path.join(dir, 'no-profile') },
    send: (m) => { sent.push(m); return true; },
  });
}

const runs = async (dir: string): Promise<number> => (await readFile(path.join(dir, 'runs'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
const ends = (sent: AgentMessage[], id: string): Array<{ replayed?: boolean }> => sent.filter((m) => m.type === 'job.end' && m.jobId === id) as Array<{ replayed?: boolean }>;
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));
/** A job.start reaches M; resolves once M is idle again (the job ran, or was refused). */
async function start(m: JobManager, j: JobStart): Promise<void> {
  m.onJobStart(j);
  await settle();
  await m.idle();
}

test('a job.start for a job this host already ran: not run again; its unacknowledged result goes again; acknowledged, nothing is sent', async () => {
  const { dir, cleanup } = await tmpDir('bento-resend-');
  try {
    const sent: AgentMessage[] = [];
    const m = manager(dir, sent);
    await m.recover();
    await start(m, job(1));
    assert.equal(await runs(dir), 1);
    assert.equal(ends(sent, job(1).jobId).length, 1);

    await start(m, job(1)); // the hub the agent reached after its first hub died sends it again
    assert.equal(await runs(dir), 1, 'not run a second time (before: run again)');
    assert.deepEqual(ends(sent, job(1).jobId).map((e) => e.replayed === true), [false, true], 'its result went again, as a replay');

    await m.onAck(job(1).jobId);
    await start(m, job(1));
    assert.equal(await runs(dir), 1);
    assert.equal(ends(sent, job(1).jobId).length, 2, 'acknowledged: nothing more to send');

    await start(m, job(2)); // another job runs as ever
    assert.equal(await runs(dir), 2);
  } finally {
    await cleanup();
  }
});

test('after an agent restart, a job whose result waits in the outbox is not run again', async () => {
  const { dir, cleanup } = await tmpDir('bento-resend-');
  try {
    const first: AgentMessage[] = [];
    const a = manager(dir, first);
    await a.recover();
    await start(a, job(3)); // ended, never acknowledged (its hub died)
    const sent: AgentMessage[] = [];
    const b = manager(dir, sent); // the restarted agent
    await b.recover();
    await start(b, job(3));
    assert.equal(await runs(dir), 1, 'not run again after the restart');
    assert.deepEqual(ends(sent, job(3).jobId).map((e) => e.replayed === true), [true]);
  } finally {
    await cleanup();
  }
});
