// The state rules of docs/status.md, one case each, on the pure derivation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StatusJob } from '../../common/protocol/admin.js';
import { decidingJob, deriveState, type DeriveInput } from '../../hub/status/derive.js';
import { duration, renderTable } from '../../hub/status/format.js';
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

test('new machine: never connected (even with a version waiting), or connected with nothing done', () => {
  assert.equal(state({ connected: false, lastConnectedAt: null }), 'new machine');
  assert.equal(state({ connected: false, lastConnectedAt: null, published: { hash: H1, publishedAt: T(5) } }), 'new machine');
  assert.equal(state({}), 'new machine');
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
  assert.equal(state({ finished: [sw, build] }), 'up to date');
  assert.equal(state({ finished: [sw, build, badBuild] }), 'failing');
  assert.equal(state({ finished: [job('boot', 'success', 3)] }), 'up to date');
  assert.equal(state({ finished: [job('dry-activate', 'success', 3)] }), 'new machine');
});

test('failing, rolled back, interrupted', () => {
  assert.equal(state({ finished: [job('switch', 'failure', 5)] }), 'failing');
  assert.equal(state({ finished: [job('switch', 'interrupted', 5)] }), 'failing');
  const d = deriveState(input({ finished: [job('switch', 'success', 4), job('switch', 'rolled-back', 5, { reason: 'rolled back: hub unreachable 90 s after switch' })] }));
  assert.deepEqual([d.state, d.detail], ['rolled back', 'rolled back: hub unreachable 90 s after switch']);
  // A later success clears it.
  assert.equal(state({ finished: [job('switch', 'rolled-back', 5), job('switch', 'success', 6)] }), 'up to date');
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
  assert.match(head!, /^HOST\s+CONNECTION\s+CARRIER\s+PUBLISHED\s+APPLIED\s+STATE\s+LAST JOB\s+AGE\s+TOOK$/);
  assert.match(row!, /^web1\s+up 10m\s+ws\s+a{12}\s+a{12}\s+rolled back\s+switch rolled-back\s+5m\s+1m33s$/);
  assert.equal(note, '  web1: rolled back: hub unreachable 90 s after switch');
});
