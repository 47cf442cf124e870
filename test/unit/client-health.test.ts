// The agent's health check hook (client/jobs/health-check.ts) with real
// commands: retried until it passes, failing the switch when it never does,
// and left out of jobs that activate nothing. A real agent, hub and rollback
// guard run it in test/integration/rollout.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { HealthCheck } from '../../client/jobs/health-check.js';
import type { JobStart } from '../../common/protocol/messages.js';

const log = pino({ level: 'silent' });
const job = (action: JobStart['action']): JobStart => ({ type: 'job.start', jobId: `job-${action}-00000001`, action });
const ok = { outcome: 'success' as const, exitCode: 0 };

test('retried until it exits 0: the switch stays a success and job.end says "passed"', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bento-health-'));
  try {
    // Fails twice (the service is still starting), then passes; counts its runs in a file.
    const counter = path.join(dir, 'n');
    const script = `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}; echo "attempt $n for $BENTO_HOST"; [ $n -ge 3 ]`;
    const h = new HealthCheck({ settings: { command: ['/bin/sh', '-c', script], timeoutMs: 10_000, intervalMs: 100 }, host: 'web1', log });
    const lines: string[] = [];
    const r = await h.settle(job('switch'), ok, (l) => lines.push(l));
    assert.deepEqual(r, ok);
    assert.equal((await readFile(counter, 'utf8')).trim(), '3');
    assert.deepEqual(await h.finalize(job('switch')), { health: 'passed' });
    assert.match(lines.join('\n'), /health: attempt 1: sh exited with status 1; trying again in 0\.1 s\n[\s\S]*health: passed after 3 attempts/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('never passes within its timeout: the switch becomes a failure (the guard then rolls it back) and job.end says "failed"', async () => {
  const h = new HealthCheck({ settings: { command: ['/bin/sh', '-c', 'echo "web: connection refused"; exit 7'], timeoutMs: 1000, intervalMs: 200 }, host: 'web1', log });
  const lines: string[] = [];
  const t0 = Date.now();
  const r = await h.settle(job('test'), ok, (l) => lines.push(l));
  assert.ok(Date.now() - t0 < 5000, 'bounded by its timeout');
  assert.equal(r.outcome, 'failure');
  assert.match(r.reason ?? '', /^health check failed: sh exited with status 7 \(attempt \d+, \d+ s after the test\)$/);
  assert.deepEqual(await h.finalize(job('test')), { health: 'failed' });
  assert.ok(lines.includes('health: web: connection refused'), 'the last attempt\'s output is in the job log');
  const missing = new HealthCheck({ settings: { command: ['/nonexistent/check'], timeoutMs: 5000, intervalMs: 100 }, host: 'web1', log });
  const m = await missing.settle(job('switch'), ok, () => undefined);
  assert.match(m.reason ?? '', /^health check failed: cannot run \/nonexistent\/check: .* \(attempt 1,/, 'a command that cannot start fails at once, without retries');
});

test('not run for actions that activate nothing now, nor after a rebuild that already failed', async () => {
  const h = new HealthCheck({ settings: { command: ['/bin/false'], timeoutMs: 1000, intervalMs: 100 }, host: 'web1', log });
  for (const action of ['boot', 'build', 'dry-activate'] as const) {
    assert.deepEqual(await h.settle(job(action), ok, () => undefined), ok, action);
    assert.deepEqual(await h.finalize(job(action)), {}, `${action}: no health field`);
  }
  const failed = { outcome: 'failure' as const, exitCode: 1, reason: 'nixos-rebuild exited with status 1' };
  assert.deepEqual(await h.settle(job('switch'), failed, () => undefined), failed);
  assert.deepEqual(await h.finalize(job('switch')), {});
});
