// The state rules of docs/status.md, one case each, on the pure derivation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostStatus, StatusJob } from '../../common/protocol/admin.js';
import { decidingJob, deriveState, type DeriveInput } from '../../hub/status/derive.js';
import { duration, renderTable, shortSystem } from '../../hub/status/format.js';
import { ago as since } from '../../hub/cli/util.js';

const T = (min: number): string => new Date(Date.UTC(2025, 0, 1, 12, min)).toISOString();
const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);

let n = 0;
function job(action: string, state: string, endMin: number, extra: Partial<StatusJob> = {}): StatusJob {
  return {
    id: `job${String(++n).padStart(6, '0')}`, action: action as StatusJob['action'], state, origin: 'hub',
    requestedAt: T(endMin - 1), startedAt: T(endMin - 1), endedAt: T(endMin), durationMs: 60_000, exitCode: state === 'success' ? 0 : 1,
    reason: state === 'success' ? null : `${state} reason`, ...extra,
  };
}

function input(o: Partial<DeriveInput> = {}): DeriveInput {
  return { connected: true, lastConnectedAt: T(0), published: null, applied: null, active: null, finished: [], ...o };
}

const state = (o: Partial<DeriveInput>): string => deriveState(input(o)).state;

test('never connected: registered, no agent ever came (even with a version waiting); new machine: connected, nothing done yet', () => {
  assert.equal(state({ connected: false, lastConnectedAt: null }), 'never connected');
  const waiting = deriveState(input({ connected: false, lastConnectedAt: null, published: { hash: H1, publishedAt: T(5) } }));
  assert.deepEqual([waiting.state, waiting.detail], ['never connected', `registered, but its agent never connected; version ${H1.slice(0, 12)} waits for it`]);
  assert.equal(state({}), 'new machine');
  assert.equal(deriveState(input({ connected: false })).state, 'offline', 'a host that came once and left is offline, not never connected');
});

test('"up to date" needs something published: a success with nothing published is "nothing published"', () => {
  const d = deriveState(input({ finished: [job('switch', 'success', 5, { id: 'jobnopub0001' })] }));
  assert.equal(d.state, 'nothing published');
  assert.match(d.detail ?? '', /last switch \(job jobnopub0001\) succeeded; nothing is published/);
  assert.equal(state({ finished: [job('boot', 'success', 3)] }), 'nothing published');
  assert.equal(deriveState(input({ connected: false, finished: [job('switch', 'success', 5)] })).lastKnownState, 'nothing published');
  // The same success with a version published before it: up to date.
  assert.equal(state({ published: { hash: H1, publishedAt: T(1) }, finished: [job('switch', 'success', 5)] }), 'up to date');
  // Failures and rollbacks are what they are, published or not.
  assert.equal(state({ finished: [job('switch', 'failure', 5)] }), 'failing');
});

test('running beats everything, and says who started it', () => {
  const d = deriveState(input({ active: job('switch', 'running', 10, { origin: 'agent', id: 'local-abc12345' }), finished: [job('switch', 'failure', 5)] }));
  assert.equal(d.state, 'running');
  assert.match(d.detail ?? '', /switch job local-abc12345 running \(started by the host itself\)/);
});

test('offline keeps the last known state', () => {
  const d = deriveState(input({ connected: false, finished: [job('switch', 'rolled-back', 5)] }));
  assert.equal(d.state, 'offline');
  assert.equal(d.lastKnownState, 'rolled back');
  assert.equal(deriveState(input({ connected: false })).lastKnownState, 'new machine');
});

test('the deciding job: switch, test and boot apply; a successful build or dry-activate does not; any failure does', () => {
  const sw = job('switch', 'success', 5);
  const build = job('build', 'success', 8);
  assert.equal(decidingJob([sw, build]), sw);
  const badBuild = job('build', 'failure', 9);
  assert.equal(decidingJob([sw, build, badBuild]), badBuild);
  const published = { hash: H1, publishedAt: T(0) };
  assert.equal(state({ published, finished: [sw, build] }), 'up to date');
  assert.equal(state({ published, finished: [sw, build, badBuild] }), 'failing');
  assert.equal(state({ published, finished: [job('boot', 'success', 3)] }), 'up to date');
  assert.equal(state({ finished: [job('dry-activate', 'success', 3)] }), 'new machine');
});

test('failing, rolled back, interrupted', () => {
  assert.equal(state({ finished: [job('switch', 'failure', 5)] }), 'failing');
  assert.equal(state({ finished: [job('switch', 'interrupted', 5)] }), 'failing');
  const d = deriveState(input({ finished: [job('switch', 'success', 4), job('switch', 'rolled-back', 5, { reason: 'rolled back: hub unreachable 90 s after switch' })] }));
  assert.deepEqual([d.state, d.detail], ['rolled back', 'rolled back: hub unreachable 90 s after switch']);
  // A later success clears it.
  assert.equal(state({ published: { hash: H1, publishedAt: T(0) }, finished: [job('switch', 'rolled-back', 5), job('switch', 'success', 6)] }), 'up to date');
});

test('a newer publish that no job acted on: sync pending before the host looked, rebuild pending after', () => {
  const published = { hash: H2, publishedAt: T(10) };
  const finished = [job('switch', 'success', 5)];
  assert.equal(state({ published, applied: H1, finished, lastConnectedAt: T(2) }), 'sync pending');
  assert.equal(state({ published, applied: H1, finished, lastConnectedAt: T(12) }), 'rebuild pending');
  // Even after a failure or a rollback: the new version is the next thing to try (as upstream).
  assert.equal(state({ published, applied: H1, finished: [job('switch', 'rolled-back', 5)], lastConnectedAt: T(2) }), 'sync pending');
  // A job that started before the publish did not act on it, even if it ended after.
  assert.equal(state({ published, applied: H1, finished: [job('switch', 'success', 11, { startedAt: T(9) })], lastConnectedAt: T(12) }), 'rebuild pending');
});

test('up to date vs auto updated: who applied the published version', () => {
  const published = { hash: H1, publishedAt: T(10) };
  assert.equal(state({ published, applied: H1, finished: [job('switch', 'success', 12)] }), 'up to date');
  // The host runs the newest version but no hub job since the publish applied it: it did so itself.
  assert.equal(state({ published, applied: H1, finished: [job('switch', 'success', 5)], lastConnectedAt: T(11) }), 'auto updated');
  // The deciding job was started by the agent (local page, pull autoApply, flake self-update).
  assert.equal(state({ published, applied: H1, finished: [job('switch', 'success', 12, { origin: 'agent' })] }), 'auto updated');
  assert.equal(state({ finished: [job('switch', 'success', 12, { origin: 'agent' })] }), 'auto updated');
  // A job after the publish succeeded, yet the host reports another version: not up to date.
  assert.equal(state({ published, applied: H2, finished: [job('switch', 'success', 12)] }), 'rebuild pending');
  // Hosts that report no version (no pull configured) are judged by their jobs alone.
  assert.equal(state({ published, applied: null, finished: [job('switch', 'success', 12)] }), 'up to date');
});

test('formatting helpers and the table', () => {
  const now = Date.parse(T(30));
  assert.equal(since(T(29), now), '60s');
  assert.equal(since(T(0), now), '30m');
  assert.equal(since(null, now), '-');
  assert.deepEqual([duration(850), duration(4_600), duration(65_000), duration(null)], ['850ms', '4.6s', '1m05s', '-']);
  const out = renderTable([{
    name: 'web1', state: 'rolled back', detail: 'rolled back: hub unreachable 90 s after switch', lastKnownState: null,
    connected: true, connectedSince: T(20), lastSeenAt: T(30), carrier: 'ws', via: null, remoteAddress: '192.0.2.1:5000',
    published: { hash: H1, publishedAt: T(1) }, applied: H1, system: null, generation: 3, runningJob: null, queuedJob: null,
    lastJob: job('switch', 'rolled-back', 25, { durationMs: 93_000 }),
  }], now);
  const [head, row, , note] = out.split('\n');
  assert.match(head!, /^HOST\s+CONNECTION\s+CARRIER\s+PUBLISHED\s+APPLIED\s+SYSTEM\s+GEN\s+STATE\s+JOB\s+WHEN\s+TOOK$/);
  assert.match(row!, /^web1\s+up 10m\s+ws\s+a{12}\s+a{12}\s+-\s+3\s+rolled back\s+switch rolled-back\s+ended 5m ago\s+1m33s$/);
  assert.equal(note, '  web1: rolled back: hub unreachable 90 s after switch');
});

const SYS = (name: string): string => `/nix/store/${'0123456789abcdfghijklmnpqrsvwxyz'}-${name}`;

function host(name: string, o: Partial<HostStatus>): HostStatus {
  return {
    name, state: 'up to date', detail: null, lastKnownState: null, connected: true, connectedSince: T(20), lastSeenAt: T(30), carrier: 'ssh',
    via: null, remoteAddress: '192.0.2.1:5000', published: null, applied: null, system: null, generation: null, runningJob: null, queuedJob: null,
    lastJob: null, ...o,
  };
}

test('status table: system and generation columns, "started/ended X ago", queued jobs, and the hosts that need attention first', () => {
  const now = Date.parse(T(30));
  const out = renderTable([
    host('app1', { state: 'up to date', system: SYS('nixos-system-app1-24.11.20241231.abc1234'), generation: 41, lastJob: job('switch', 'success', 25) }),
    host('db1', { state: 'failing', detail: 'nixos-rebuild exited with status 1', system: SYS('nixos-system-db1-24.11.20241231.abc1234'), generation: 7, lastJob: job('switch', 'failure', 28) }),
    host('gone', { state: 'offline', lastKnownState: 'up to date', connected: false, connectedSince: null, lastSeenAt: T(0), detail: 'was: up to date' }),
    host('fresh', { state: 'never connected', connected: false, connectedSince: null, lastSeenAt: null, carrier: null, detail: 'registered, but its agent never connected',
      queuedJob: job('switch', 'queued', 29, { endedAt: null, startedAt: null, requestedAt: T(28), durationMs: null }) }),
    host('run1', { state: 'running', runningJob: job('test', 'running', 29, { endedAt: null, startedAt: T(29), durationMs: null }),
      queuedJob: job('boot', 'queued', 29, { endedAt: null, startedAt: null, durationMs: null }) }),
    host('quiet', { state: 'nothing published', detail: 'the last switch (job x) succeeded; nothing is published', lastJob: job('switch', 'success', 20) }),
  ], now);
  const lines = out.split('\n');
  const rows = lines.slice(1, 7);
  assert.deepEqual(rows.map((r) => r.split(/\s+/)[0]), ['db1', 'gone', 'fresh', 'run1', 'quiet', 'app1'], 'failing, offline, never connected, running, then settled');
  const row = (name: string): string => rows.find((r) => r.startsWith(`${name} `))!;
  assert.match(row('app1'), /\s0123456-24\.11\.20241231\.abc1234\s+41\s+up to date\s+switch success\s+ended 5m ago\s/);
  assert.match(row('db1'), /\s0123456-24\.11\.20241231\.abc1234\s+7\s+failing\s/);
  assert.match(row('gone'), /seen 30m ago .*offline \(was up to date\)/);
  assert.match(row('fresh'), /^fresh\s+never\s+-.*never connected\s+switch queued\s+queued 2m ago\s+-$/);
  assert.match(row('run1'), /running\s+test running, boot queued\s+started 60s ago\s+1m00s…$/);
  // Notes for what needs attention; none for settled hosts.
  assert.ok(out.includes('  db1: nixos-rebuild exited with status 1'));
  assert.ok(out.includes('  fresh: registered, but its agent never connected'));
  assert.ok(!out.includes('  quiet:'), 'nothing published is no news');
  assert.equal(shortSystem(SYS('nixos-system-web1-24.11.20241231.abc1234'), 'other'), '0123456-web1-24.11.20241231.abc~');
  assert.equal(shortSystem('/run/current-system', 'x'), 'current-system');
  assert.equal(shortSystem(null, 'x'), '-');
});
