// The pull's logs-outbox (STATE/pull/logs-outbox/, client/pull/logs-outbox.ts)
// through ConfigPuller.queueLog on a real directory: a hub that never takes
// the logs cannot fill the host's disk. Bounded by count (50) and bytes
// (64 MiB, the documented defaults), oldest dropped first, each drop logged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { validateClientConfig } from '../../client/config.js';
import { ConfigPuller } from '../../client/pull/puller.js';
import { captureLog } from '../helpers/log-capture.js';

const MAX_LOGS = 50;
const MAX_BYTES = 64 * 1024 * 1024;

async function withPuller(fn: (p: ConfigPuller, dir: string, drops: () => string[]) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'bento-logs-outbox-'));
  const { log, lines } = captureLog('info');
  try {
    const config = validateClientConfig({
      name: 'web1', hub: 'ssh://127.0.0.1:2222', hubFingerprint: `SHA256:${'A'.repeat(43)}`,
      identityFile: path.join(root, 'key'), stateDir: path.join(root, 'state'), localPage: null,
    });
    const p = new ConfigPuller({ config, log, privateKey: Buffer.alloc(0) });
    await p.init();
    const drops = (): string[] => lines().filter((l) => String(l['msg']).startsWith('logs-outbox full')).map((l) => l['log'] as string);
    await fn(p, p.store.outboxDir, drops);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const name = (i: number): string => `20260101-0000${String(i).padStart(2, '0')}_system-${i}_success.log.gz`;

test('logs-outbox: at most 64 MiB, the oldest logs dropped first with a log line', async () => {
  await withPuller(async (p, dir, drops) => {
    // 7 MiB each, incompressible (a log is at most 8 MiB before gzip): 11 of them are 77 MiB.
    for (let i = 0; i < 11; i++) await p.queueLog(name(i), randomBytes(7 * 1024 * 1024));
    const left = (await readdir(dir)).sort();
    let bytes = 0;
    for (const n of left) bytes += (await stat(path.join(dir, n))).size;
    assert.ok(bytes <= MAX_BYTES, `${bytes} bytes queued`);
    assert.deepEqual(left, Array.from({ length: 9 }, (_, i) => name(i + 2)), 'the 9 newest are kept');
    assert.deepEqual(drops(), [name(0), name(1)]);
  });
});

test('logs-outbox: at most 50 logs; a temp file a killed agent left is removed', async () => {
  await withPuller(async (p, dir, drops) => {
    // A temp file a killed agent left long ago goes; the upload never saw it (dot name).
    const stale = path.join(dir, '.old.log.gz.tmp');
    await writeFile(stale, 'half');
    await utimes(stale, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    for (let i = 0; i < MAX_LOGS + 2; i++) await p.queueLog(name(i), Buffer.from(`log ${i}`));
    const left = (await readdir(dir)).sort();
    assert.ok(!left.includes('.old.log.gz.tmp'));
    assert.equal(left.length, MAX_LOGS);
    assert.equal(left[0], name(2));
    assert.deepEqual(drops(), [name(0), name(1)]);
  });
});
