// A job's final record carries its output summary (lines, bytes, cuts) even
// when its first final write was refused and made again
// (hub/store/jobs.ts `endings`). The output cap hands the summary out once,
// at the first final save; found by review: when that save was refused (the
// fence: the hub was not current), the save made again had none, and the
// record lost its line and byte counts. Memory backend; the fence refuses
// the first final write the way a hub that is not current does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';

test('a final write refused by the fence and made again keeps the job\'s output summary', async () => {
  let refuse = false;
  const store = await JobStore.open(new MemoryBackend(), {
    history: 10, log: silentLogger(),
    fence: { stamp: () => { if (refuse) throw new BentoError('CLUSTER_UNAVAILABLE', 'this hub is not current'); return { hub: 'hub1', epoch: 3 }; } },
  });
  try {
    const run: JobRecord = { id: 'jobfinal001', host: 'web1', action: 'switch', state: 'running', requestedAt: new Date().toISOString(), startedAt: new Date().toISOString(), endedAt: null, exitCode: null, durationMs: null, reason: null };
    await store.save(run);
    for (let i = 0; i < 5; i++) store.appendOutput(run.id, 'stdout', `building ${'x'.repeat(30)} ${i}`);
    const done: JobRecord = { ...run, state: 'success', endedAt: new Date().toISOString(), exitCode: 0, durationMs: 10 };
    refuse = true;
    await assert.rejects(store.save(done), /not current/);
    refuse = false;
    await store.save(done);
    const rec = store.get(run.id);
    assert.equal(rec?.state, 'success');
    assert.equal(rec?.output?.lines, 5, JSON.stringify(rec?.output));
    assert.ok((rec?.output?.bytes ?? 0) > 150);
  } finally {
    await store.close();
  }
});
