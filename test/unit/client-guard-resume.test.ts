// The rollback guard after an agent restart (client/rollback/guard.ts): while
// it decides the switch the previous agent died in, every hello the agent
// could send must account for that job — as running, or as a result in the
// outbox. A hello with neither makes the hub close the job as "interrupted"
// (seen on CI: the rollback brought the network back, the agent reconnected
// between the decision and the outbox write, and the hub recorded
// "interrupted" instead of "rolled-back").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RollbackGuard, type GuardedAgent } from '../../client/rollback/guard.js';
import { writeGuard, readGuard } from '../../client/rollback/state.js';
import { Outbox } from '../../client/jobs/outbox.js';
import type { JobManager } from '../../client/jobs/manager.js';
import type { JobEnd } from '../../common/protocol/messages.js';
import { silentLogger } from '../../common/platform/log.js';

const JOB = 'guardjob0001';

/** What a hello built at this moment would tell the hub about JOB. */
interface Seen { running: string | null | undefined; unreported: string[] }

test('a restarted agent keeps naming the job until its verdict is in the outbox', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bento-guard-'));
  try {
    const stateDir = path.join(dir, 'state');
    await mkdir(stateDir);
    // A "system" whose switch-to-configuration points current-system back at itself.
    const currentSystem = path.join(dir, 'current-system');
    const good = path.join(dir, 'good-system');
    const bad = path.join(dir, 'bad-system');
    for (const s of [good, bad]) {
      await mkdir(path.join(s, 'bin'), { recursive: true });
      const stc = path.join(s, 'bin', 'switch-to-configuration');
      await writeFile(stc, `#!/bin/sh\nln -sfn ${s} ${currentSystem}\n`);
      await chmod(stc, 0o755);
    }
    await symlink(bad, currentSystem);

    let guard: RollbackGuard | null = null;
    const seen: Seen[] = [];
    const observe = async (ob: Outbox): Promise<void> => {
      seen.push({ running: (await guard!.helloFields()).runningJobId, unreported: (await ob.list()).map((e) => e.jobId) });
    };
    class WatchedOutbox extends Outbox {
      override async put(end: JobEnd): Promise<void> {
        await observe(this); // the moment just before the result is durable
        await super.put(end);
        await observe(this);
      }
    }
    const outbox = new WatchedOutbox(stateDir);
    await outbox.init();
    await outbox.markRunning({ jobId: JOB, action: 'test', startedAt: new Date(Date.now() - 5000).toISOString(), pid: 1 });
    // Left by the killed agent: the window already over, so it rolls back at once.
    await writeGuard(stateDir, {
      version: 1, jobId: JOB, action: 'test', previousSystem: good, previousProfile: null, previousGeneration: null,
      phase: 'confirming', recordedAt: new Date(Date.now() - 5000).toISOString(), deadline: new Date(Date.now() - 1000).toISOString(), timeoutMs: 3000,
    });
    const agent: GuardedAgent = {
      freshConnection: async () => false,
      connected: false,
      jobs: { outbox } as unknown as JobManager,
    };
    guard = new RollbackGuard({
      agent, stateDir, currentSystem, systemProfile: path.join(dir, 'profile'), env: {}, timeoutMs: 3000, enabled: true, log: silentLogger(),
    });
    await guard.atStart();
    assert.equal((await guard.helloFields()).runningJobId, JOB, 'taken over at start');
    assert.equal(guard.busy, true);
    await guard.resume();

    assert.equal(await readlink(currentSystem), good, 'rolled back to the recorded system');
    assert.equal(await readGuard(stateDir), null, 'decided: the record is gone');
    const [end] = await outbox.list();
    assert.equal(end?.jobId, JOB);
    assert.equal(end?.outcome, 'rolled-back', end?.reason);
    assert.equal(seen.length, 2);
    for (const s of seen) {
      assert.ok(s.running === JOB || s.unreported.includes(JOB), `a hello at this moment would drop the job: ${JSON.stringify(s)}`);
    }
    // Once durable, the guard lets go; the outbox carries the job from here on.
    assert.equal((await guard.helloFields()).runningJobId, undefined);
    assert.equal(guard.busy, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
