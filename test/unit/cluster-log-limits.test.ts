// hub.json: with a "cluster", publish.logMaxFiles is bounded so each host's
// log manifest (one NATS record, logs-kv.ts) fits NATS' max_payload even when
// every name is as long as a host may make it. Found by review: ~4,100 names
// of 200 characters passed 1 MiB, after which that host's logs never moved.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateHubConfig } from '../../hub/fleet/hub-config.js';
import { CLUSTER_LOG_MAX_FILES, LOG_MANIFEST_ENTRY_MAX } from '../../hub/publish/settings.js';
import { LOG_NAME_MAX, LOG_NAME_RE } from '../../hub/sftp/vpath.js';

const cluster = { servers: ['nats://127.0.0.1:4222'], hubName: 'huba' };

test('logMaxFiles past what one manifest can hold is refused with a cluster, allowed without', () => {
  assert.equal(validateHubConfig({ cluster, publish: { logMaxFiles: CLUSTER_LOG_MAX_FILES } }).publish?.logMaxFiles, CLUSTER_LOG_MAX_FILES);
  assert.throws(() => validateHubConfig({ cluster, publish: { logMaxFiles: CLUSTER_LOG_MAX_FILES + 1 } }),
    (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && /"logMaxFiles" must be at most \d+ with a "cluster"/.test(e.message));
  assert.equal(validateHubConfig({ publish: { logMaxFiles: 100_000 } }).publish?.logMaxFiles, 100_000, 'one hub keeps its logs as files');
  assert.ok(validateHubConfig({ cluster }).publish === undefined, 'the defaults (500) fit');
});

test('the bound holds for the largest manifest a host can make', () => {
  assert.ok(LOG_NAME_RE.test('a'.repeat(LOG_NAME_MAX)) && !LOG_NAME_RE.test('a'.repeat(LOG_NAME_MAX + 1)));
  const logs: Record<string, unknown> = {};
  for (let i = 0; i < CLUSTER_LOG_MAX_FILES; i++) {
    logs[String(i).padStart(LOG_NAME_MAX, 'x')] = { size: 2 ** 40, at: new Date().toISOString(), hub: 'h'.repeat(63) };
  }
  const bytes = JSON.stringify({ logs }).length;
  assert.ok(bytes + 1024 <= 1024 * 1024, `${bytes} bytes`);
  assert.ok(bytes + LOG_MANIFEST_ENTRY_MAX + 1024 > 1024 * 1024, 'and is tight: one more would not fit');
});
