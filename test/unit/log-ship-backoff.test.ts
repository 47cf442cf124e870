// LogQuotas moving finished uploads into the cluster's archive (log-quota.ts)
// when the archive refuses one log for a reason of its own: that log backs
// off alone, behind the others, and every other host's logs still move; only
// CLUSTER_UNAVAILABLE (NATS does not answer) stops a round. Found by review:
// shipAll returned at the first error and the refused log stayed first, so
// one hostile host's log held up every host's logs at that hub for good.
// A unit test with a scripted archive: it pins the exact order and counts
// tries, which a real NATS cluster cannot do cheaply; the same case against a
// real oversized manifest is in test/integration/cluster-logs-review.test.ts.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BentoError, type ErrorCode } from '../../common/protocol/errors.js';
import { silentLogger } from '../../common/platform/log.js';
import { DEFAULT_PUBLISH_SETTINGS } from '../../hub/publish/settings.js';
import type { LogArchive } from '../../hub/sftp/log-archive.js';
import { LogQuotas, LogUsage } from '../../hub/sftp/log-quota.js';

const LOGS = [['evil', '20260101-000000_a_success.log.gz'], ['web1', '20260101-000001_b_success.log.gz'], ['web2', '20260101-000002_c_success.log.gz']] as const;

/** A fleet directory with one finished log per host of LOGS, and an archive refusing evil's with CODE. */
async function setup(code: ErrorCode): Promise<{ fleetDir: string; archive: LogArchive; stored: string[]; tries: string[] }> {
  const fleetDir = await mkdtemp(path.join(os.tmpdir(), 'ship-backoff-'));
  const stored: string[] = [];
  const tries: string[] = [];
  const archive: LogArchive = {
    async list() { return new Map(); },
    async remove() {},
    async store(host, name) {
      tries.push(host);
      if (host === 'evil') throw new BentoError(code, `refused ${host}/${name}`);
      stored.push(`${host}/${name}`);
    },
    async read() { return null; },
  };
  for (const [host, name] of LOGS) {
    await mkdir(path.join(fleetDir, 'jails', host, 'logs'), { recursive: true });
    await writeFile(path.join(fleetDir, 'jails', host, 'logs', name), 'x');
  }
  return { fleetDir, archive, stored, tries };
}

/** Queue every log, evil's first (finished() keeps the order, unlike a directory listing). */
function queueAll(q: LogQuotas, fleetDir: string): void {
  for (const [host, name] of LOGS) q.finished(host, new LogUsage(path.join(fleetDir, 'jails', host, 'logs')), name);
}

test('a log the archive refuses backs off alone; the other hosts\' logs move', async () => {
  const { fleetDir, archive, stored, tries } = await setup('STATE_WRITE_FAILED');
  const q = new LogQuotas({ archive, settings: DEFAULT_PUBLISH_SETTINGS, log: silentLogger(), retryMs: 50 });
  try {
    queueAll(q, fleetDir);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(stored.sort(), [`web1/${LOGS[1][1]}`, `web2/${LOGS[2][1]}`]);
    assert.deepEqual(await readdir(path.join(fleetDir, 'jails', 'web1', 'logs')), [], 'a moved log leaves the jail');
    assert.deepEqual(await readdir(path.join(fleetDir, 'jails', 'evil', 'logs')), [LOGS[0][1]], 'the refused log stays, to be tried again');
    // Its own backoff (50, 100, 200, 400, 800 ms): a handful of tries in 1.5 s, not one every 50 ms.
    const evil = tries.filter((h) => h === 'evil').length;
    assert.ok(evil >= 2 && evil <= 6, `evil's log tried ${evil} times`);
  } finally {
    await q.close();
    await rm(fleetDir, { recursive: true, force: true });
  }
});

test('NATS unreachable (CLUSTER_UNAVAILABLE) stops the round: nothing else is tried until the next one', async () => {
  const { fleetDir, archive, stored, tries } = await setup('CLUSTER_UNAVAILABLE');
  const q = new LogQuotas({ archive, settings: DEFAULT_PUBLISH_SETTINGS, log: silentLogger(), retryMs: 60_000 });
  try {
    queueAll(q, fleetDir);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(tries, ['evil']);
    assert.deepEqual(stored, []);
  } finally {
    await q.close();
    await rm(fleetDir, { recursive: true, force: true });
  }
});
