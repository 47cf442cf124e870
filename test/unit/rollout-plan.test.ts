// The rollout planner and its decisions (hub/rollout/plan.ts, decide.ts):
// pure functions, so every rule is checked here on plain records. Real agents
// run whole rollouts in test/integration/rollout*.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countOf, orderHosts, planWaves, toleratedFailures, waveOf } from '../../hub/rollout/plan.js';
import { decide } from '../../hub/rollout/decide.js';
import type { MemberRecord, RolloutRecord } from '../../hub/rollout/records.js';
import { isRolloutEntry } from '../../hub/rollout/records.js';
import { parseDuration, parseSize, rolloutLine } from '../../common/protocol/rollout.js';
import { rolloutSummary } from '../../hub/rollout/view.js';

const hosts = (n: number): string[] => Array.from({ length: n }, (_, i) => `h${String(i + 1).padStart(2, '0')}`);
const sizes = (w: string[][]): number[] => w.map((x) => x.length);

test('sizes: numbers and percentages, with errors that name the option', () => {
  assert.deepEqual(parseSize('3', '--canary'), { n: 3 });
  assert.deepEqual(parseSize(' 25% ', '--canary'), { pct: 25 });
  assert.deepEqual(parseSize('0', '--max-failures', { zero: true }), { n: 0 });
  assert.throws(() => parseSize('0', '--canary'), /--canary must be a number of hosts \(1 or more\) or a percentage like 25% \(1\.\.100\), not "0"/);
  assert.throws(() => parseSize('101%', '--canary'), /USAGE|--canary/);
  assert.throws(() => parseSize('1.5', '--max-in-flight'), /--max-in-flight must be/);
  assert.throws(() => parseSize('ten', '--waves step'), /--waves step must be/);
  assert.equal(parseDuration('90', 'x'), 90_000);
  assert.equal(parseDuration('10m', 'x'), 600_000);
  assert.equal(parseDuration('2h', 'x'), 7_200_000);
  assert.throws(() => parseDuration('0s', '--offline-timeout'), /--offline-timeout must be a duration like 90s, 10m or 2h/);
  assert.throws(() => parseDuration('5d', '--offline-timeout'), /--offline-timeout/);
});

test('counts: percentages of a selection round up and never give 0 hosts; tolerated failures round down', () => {
  assert.equal(countOf({ pct: 10 }, 6), 1);
  assert.equal(countOf({ pct: 50 }, 7), 4);
  assert.equal(countOf({ n: 50 }, 7), 7, 'capped at the selection');
  assert.equal(countOf({ pct: 1 }, 10_000), 100);
  assert.equal(toleratedFailures({ pct: 10 }, 5), 0, '10% of a 5-host wave tolerates none');
  assert.equal(toleratedFailures({ pct: 10 }, 40), 4);
  assert.equal(toleratedFailures({ n: 2 }, 1), 2);
});

test('default growth: a canary, then each wave twice the one before, the last taking the rest', () => {
  assert.deepEqual(sizes(planWaves(hosts(6), { waves: null, canary: { n: 1 } })), [1, 2, 3]);
  assert.deepEqual(sizes(planWaves(hosts(1), { waves: null, canary: { n: 1 } })), [1]);
  assert.deepEqual(sizes(planWaves(hosts(20), { waves: null, canary: { n: 2 } })), [2, 4, 8, 6]);
  assert.deepEqual(sizes(planWaves(hosts(100), { waves: null, canary: { pct: 5 } })), [5, 10, 20, 40, 25]);
  const big = planWaves(hosts(10_000), { waves: null, canary: { n: 1 } });
  assert.equal(big.length, 14);
  assert.equal(big.flat().length, 10_000);
  assert.equal(new Set(big.flat()).size, 10_000, 'every host exactly once');
});

test('--waves: cumulative steps; steps that add nobody are dropped; hosts left over make one more wave', () => {
  assert.deepEqual(sizes(planWaves(hosts(100), { waves: [{ n: 1 }, { pct: 10 }, { pct: 50 }, { pct: 100 }], canary: { n: 1 } })), [1, 9, 40, 50]);
  assert.deepEqual(sizes(planWaves(hosts(6), { waves: [{ n: 1 }, { pct: 10 }, { pct: 50 }, { pct: 100 }], canary: { n: 1 } })), [1, 2, 3]);
  assert.deepEqual(sizes(planWaves(hosts(10), { waves: [{ n: 2 }, { n: 5 }], canary: { n: 1 } })), [2, 3, 5], 'the rest after the last step');
  assert.throws(() => planWaves(hosts(10), { waves: [{ n: 5 }, { n: 3 }], canary: { n: 1 } }), /--waves steps are cumulative and must not shrink: 3 is 3 of 10 hosts, fewer than the 5 before it/);
  assert.throws(() => planWaves([], { waves: null, canary: { n: 1 } }), /no hosts/);
});

test('turn order: named hosts first as given (the canaries), then the rest by name; waveOf finds each', () => {
  const order = orderHosts(['web9', 'db1', 'web9'], new Set(['web1', 'db1', 'web9', 'app2']));
  assert.deepEqual(order, ['web9', 'db1', 'app2', 'web1']);
  const waves = planWaves(order, { waves: null, canary: { n: 1 } });
  assert.deepEqual(waves, [['web9'], ['db1', 'app2'], ['web1']]);
  assert.deepEqual(order.map((h) => waveOf({ waves }, h)), [0, 1, 1, 2]);
  assert.equal(waveOf({ waves }, 'nope'), -1);
});

function rollout(waves: string[][], o: Partial<RolloutRecord['opts']> = {}, extra: Partial<RolloutRecord> = {}): RolloutRecord {
  const now = new Date().toISOString();
  return {
    kind: 'rollout', id: 'r-abcdefgh', action: 'switch', createdAt: now, updatedAt: now, endedAt: null, state: 'running', wave: 0, reason: null,
    selection: { all: true, tags: [], hosts: [] }, waves,
    opts: { canary: '1', waves: null, maxInFlight: 10, maxFailures: '0', offline: 'skip', offlineTimeoutMs: 60_000, pauseAfterCanary: false, ...o },
    ...extra,
  };
}

function member(host: string, wave: number, state: MemberRecord['state'], extra: Partial<MemberRecord> = {}): MemberRecord {
  return { kind: 'member', rollout: 'r-abcdefgh', host, wave, state, jobId: state === 'running' ? `job-${host}-0001` : null, since: new Date().toISOString(), reason: null, health: null, ...extra };
}

function situation(r: RolloutRecord, ms: MemberRecord[], online: string[] | 'all' = 'all', now = Date.now()) {
  const map = new Map(ms.map((m) => [m.host, m]));
  return { rollout: r, member: (h: string) => map.get(h), connected: (h: string) => online === 'all' || online.includes(h), now };
}

test('decide: only the current wave starts, within the in-flight limit', () => {
  const r = rollout([['a'], ['b', 'c'], ['d', 'e', 'f']], { maxInFlight: 2 });
  assert.deepEqual(decide(situation(r, [])).start, ['a'], 'the canary alone');
  const w2 = { ...r, wave: 1 };
  assert.deepEqual(decide(situation(w2, [member('a', 0, 'healthy')])).start, ['b', 'c']);
  const w3 = { ...r, wave: 2 };
  const d = decide(situation(w3, [member('a', 0, 'healthy'), member('b', 1, 'healthy'), member('c', 1, 'healthy'), member('d', 2, 'running')]));
  assert.deepEqual(d.start, ['e'], 'one slot left of two');
  assert.equal(d.advance || d.done, false);
});

test('decide: a settled wave advances; the last one is done; --pause-after-canary pauses after wave 1 only', () => {
  const r = rollout([['a'], ['b']]);
  assert.equal(decide(situation(r, [member('a', 0, 'healthy')])).advance, true);
  assert.equal(decide(situation(r, [member('a', 0, 'healthy')])).pause, false);
  const paused = rollout([['a'], ['b'], ['c']], { pauseAfterCanary: true });
  assert.deepEqual([decide(situation(paused, [member('a', 0, 'healthy')])).advance, decide(situation(paused, [member('a', 0, 'healthy')])).pause], [true, true]);
  const w2 = { ...paused, wave: 1 };
  assert.equal(decide(situation(w2, [member('a', 0, 'healthy'), member('b', 1, 'healthy')])).pause, false);
  const last = { ...r, wave: 1 };
  assert.equal(decide(situation(last, [member('a', 0, 'healthy'), member('b', 1, 'skipped')])).done, true);
});

test('decide: one failure in the canary halts (default threshold 0) and nothing else starts', () => {
  const r = rollout([['a'], ['b', 'c']]);
  const d = decide(situation(r, [member('a', 0, 'failed', { reason: 'failure: nixos-rebuild exited with status 1' })]));
  assert.match(d.halt ?? '', /^wave 1: 1 of 1 hosts failed, 0 tolerated: a \(failure: nixos-rebuild exited with status 1\)$/);
  assert.deepEqual([d.start, d.advance, d.done], [[], false, false]);
});

test('decide: failures within --max-failures go on; past it they halt; acknowledged ones no longer count', () => {
  const r = rollout([['a'], ['b', 'c', 'd', 'e']], { maxFailures: '25%' }, { wave: 1 });
  const one = [member('a', 0, 'healthy'), member('b', 1, 'failed'), member('c', 1, 'healthy'), member('d', 1, 'healthy'), member('e', 1, 'healthy')];
  assert.equal(decide(situation(r, one)).halt, null, '1 of 4 at 25% is tolerated');
  assert.equal(decide(situation(r, one)).done, true);
  const two = [...one.slice(0, 2), member('c', 1, 'failed')];
  assert.match(decide(situation(r, two)).halt ?? '', /^wave 2: 2 of 4 hosts failed, 1 tolerated/);
  const seen = two.map((m) => (m.state === 'failed' ? { ...m, acknowledged: true } : m));
  assert.equal(decide(situation(r, seen)).halt, null, 'resumed past');
  // A late failure in an earlier wave (a queued host that ran later) halts too.
  const late = rollout([['a'], ['b']], {}, { wave: 1 });
  assert.match(decide(situation(late, [member('a', 0, 'failed')])).halt ?? '', /^wave 1:/);
});

test('decide: offline hosts are skipped, queued or waited for; a wait times out into a failure', () => {
  const now = Date.now();
  const base = [['a', 'b']];
  assert.deepEqual(decide(situation(rollout(base), [], ['a'])).skip, ['b']);
  assert.deepEqual(decide(situation(rollout(base, { offline: 'queue' }), [], ['a'])).queue, ['b']);
  const waitR = rollout(base, { offline: 'wait', offlineTimeoutMs: 60_000 });
  assert.deepEqual(decide(situation(waitR, [], ['a'])).wait, ['b']);
  const since = new Date(now - 30_000).toISOString();
  const waiting = decide(situation(waitR, [member('a', 0, 'healthy'), member('b', 0, 'waiting', { since })], [], now));
  assert.deepEqual([waiting.expire, waiting.wakeAt, waiting.done], [[], Date.parse(since) + 60_000, false], 'still within its timeout: the wave waits');
  const expired = decide(situation(waitR, [member('a', 0, 'healthy'), member('b', 0, 'waiting', { since })], [], now + 31_000));
  assert.deepEqual(expired.expire, ['b']);
  const back = decide(situation(waitR, [member('a', 0, 'healthy'), member('b', 0, 'waiting', { since })], ['b'], now));
  assert.deepEqual(back.start, ['b'], 'it connected: its turn now');
  // Queued hosts do not hold the wave back.
  assert.equal(decide(situation(rollout([['a', 'b']], { offline: 'queue' }), [member('a', 0, 'healthy'), member('b', 0, 'queued')], ['a'])).done, true);
});

test('records: the store\'s guard accepts what the engine writes and nothing malformed', () => {
  const r = rollout([['a'], ['b']]);
  assert.equal(isRolloutEntry(r.id, r), true);
  assert.equal(isRolloutEntry('r-other000', r), false, 'key and id agree');
  assert.equal(isRolloutEntry(r.id, { ...r, waves: [['Bad Name']] }), false);
  const m = member('a', 0, 'healthy');
  assert.equal(isRolloutEntry('r-abcdefgh/a', m), true);
  assert.equal(isRolloutEntry('r-abcdefgh/b', m), false);
  assert.equal(isRolloutEntry('r-abcdefgh/a', { ...m, state: 'pending' }), false, 'pending has no record');
});

test('summary: counts every host once, pending ones included; the line says what matters', () => {
  const r = rollout([['a'], ['b', 'c'], ['d']], {}, { wave: 1 });
  const s = rolloutSummary(r, new Map([['a', member('a', 0, 'healthy')], ['b', member('b', 1, 'running')], ['c', member('c', 1, 'failed')]]));
  assert.deepEqual([s.wave, s.waves, s.hosts, s.counts.healthy, s.counts.running, s.counts.failed, s.counts.pending], [2, 3, 4, 1, 1, 1, 1]);
  assert.equal(rolloutLine(s), 'wave 2/3 · 1/4 healthy · 1 running · 1 failed · 1 pending');
  const aborted = rolloutSummary({ ...r, state: 'aborted' }, new Map());
  assert.equal(aborted.counts.cancelled, 4, 'hosts that never had their turn in an aborted rollout are cancelled');
});
