// The one read model (hub/status/read-model.ts): `status`, the dashboard rows
// and the metrics map the same host views, so they cannot disagree. Runs on
// the memory backend with plain objects for sessions and the registry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Hello } from '../../common/protocol/messages.js';
import { silentLogger } from '../../common/platform/log.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import { HostStateStore } from '../../hub/store/host-state.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { collectStatus } from '../../hub/status/collect.js';
import { fleetRows } from '../../hub/web/model.js';
import { HubMetrics } from '../../hub/metrics/hub-metrics.js';
import type { ReadSources } from '../../hub/status/read-model.js';
import type { LiveSession } from '../../hub/server/live-session.js';
import { LocalHolders } from '../../hub/holders/local.js';
import type { Published } from '../../hub/status/derive.js';

const T = (min: number): string => new Date(Date.UTC(2025, 0, 1, 12, min)).toISOString();
const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);

function job(id: string, host: string, state: JobRecord['state'], min: number): JobRecord {
  return { id, host, action: 'switch', state, requestedAt: T(min - 1), startedAt: T(min - 1), endedAt: state === 'running' ? null : T(min), exitCode: 0, durationMs: 60_000, reason: null };
}

function session(name: string, configHash: string | null): LiveSession {
  const hello: Hello = { type: 'hello', protocol: 1, name, agentVersion: 't', system: null, generation: 1, configHash, capabilities: [] };
  return { name, hello, closed: false, connectedSince: Date.parse(T(20)), lastInbound: Date.parse(T(21)), origin: { carrier: 'ssh', endpoint: 'ssh://x', remoteAddress: '127.0.0.1:1' } } as unknown as LiveSession;
}

test('status, dashboard rows and metrics show the same state for every host', async () => {
  const backend = new MemoryBackend();
  const jobs = await JobStore.open(backend, { history: 10, log: silentLogger() });
  const facts = await HostStateStore.open(backend);
  await jobs.save(job('web1job00001', 'web1', 'success', 5));
  await jobs.save(job('db1job000001', 'db1', 'failure', 6));
  await jobs.save(job('local-abcdefgh', 'app1', 'success', 7));
  await jobs.save(job('run1job00001', 'run1', 'running', 8));
  // Waiting: a follow-up behind run1's running job, and a --queue job for a host that never connected.
  await jobs.save(job('run1queued01', 'run1', 'queued', 9));
  await jobs.save(job('new1queued01', 'new1', 'queued', 9));
  await facts.update('web1', { lastConnectedAt: T(12), configHash: H1 });
  await facts.update('gone', { lastConnectedAt: T(1), lastSeenAt: T(2), configHash: null });
  const live = new Map([['web1', session('web1', H1)], ['db1', session('db1', null)], ['app1', session('app1', null)], ['run1', session('run1', null)], ['stray', session('stray', null)]]);
  const published = new Map<string, Published>([['web1', { hash: H2, publishedAt: T(10) }]]);
  const sources: ReadSources = {
    registry: { snapshot: { hosts: Object.fromEntries(['web1', 'db1', 'app1', 'run1', 'gone', 'new1'].map((n) => [n, { tags: [], keys: [] }])) } as never, refresh: async () => sources.registry.snapshot },
    holders: new LocalHolders({ get: (n: string) => live.get(n), all: () => [...live.values()] }),
    activeJob: () => undefined,
    jobs, facts,
    published: { get: (h) => published.get(h) ?? null, refresh: async () => undefined },
  };
  const status = await collectStatus(sources);
  const expected = { app1: 'auto updated', db1: 'failing', gone: 'offline', new1: 'never connected', run1: 'running', web1: 'rebuild pending' };
  assert.deepEqual(Object.fromEntries(status.map((h) => [h.name, h.state])), expected);
  const rows = fleetRows(sources);
  assert.deepEqual(Object.fromEntries(rows.filter((r) => r.registered).map((r) => [r.name, r.state])), expected);
  assert.deepEqual(rows.filter((r) => !r.registered).map((r) => r.name), ['stray'], 'a connected host that was removed shows on the dashboard only');
  for (const h of status) assert.equal(rows.find((r) => r.name === h.name)?.stateDetail, h.detail, `${h.name}: one detail`);
  // A queued job shows wherever the host does: status, the dashboard rows, and `list` (the live session's view).
  const queued = Object.fromEntries(status.filter((h) => h.queuedJob).map((h) => [h.name, h.queuedJob!.id]));
  assert.deepEqual(queued, { new1: 'new1queued01', run1: 'run1queued01' });
  assert.deepEqual(Object.fromEntries(rows.filter((r) => r.queuedJob).map((r) => [r.name, r.queuedJob!.id])), queued);
  const run1 = rows.find((r) => r.name === 'run1')!.client!;
  assert.deepEqual([run1.runningJob?.jobId, run1.queuedJob?.jobId], ['run1job00001', 'run1queued01']);
  assert.equal(rows.find((r) => r.name === 'web1')!.client!.queuedJob, null);
  const text = new HubMetrics({ sources, bus: new LocalEventBus(silentLogger()) }).render();
  for (const [state, n] of [['auto updated', 1], ['failing', 1], ['offline', 1], ['never connected', 1], ['running', 1], ['rebuild pending', 1]] as const) {
    assert.ok(text.includes(`bento_hosts_by_state{state="${state}"} ${n}`), `metrics: ${state}\n${text}`);
  }
  assert.match(text, /^bento_jobs_active 1$/m);
  await jobs.close();
  await facts.close();
});
