// The pieces of the hub's admission control (hub/server/): source keys,
// penalties and credit (with a hand-driven clock), the fair queue, and the
// hub.json "limits" validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceSet, parseCidr, sourceKey } from '../../hub/server/source-key.js';
import { CREDIT_TTL_MS, SourceBook } from '../../hub/server/source-book.js';
import { FairQueue } from '../../hub/server/fair-queue.js';
import { DEFAULT_HUB_LIMITS, validateLimits } from '../../hub/fleet/limits.js';
import { validateHubConfig } from '../../hub/fleet/hub-config.js';

test('source keys: IPv4 /32, IPv6 /64, IPv4-mapped IPv6 as IPv4', () => {
  assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::FFFF:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2::9'), '2001:db8:1:2::/64', 'same /64, same source');
  assert.notEqual(sourceKey('2001:db8:1:3::9'), sourceKey('2001:db8:1:2::9'), 'another /64 is another source');
  assert.equal(sourceKey('2001:0db8:0001:0002:ffff::1'), '2001:db8:1:2::/64', 'leading zeros do not make another source');
  assert.equal(sourceKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(sourceKey('::1'), '0:0:0:0::/64');
  assert.equal(sourceKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  assert.equal(sourceKey(undefined), '?');
  assert.equal(sourceKey('not an address'), '?');
});

test('exempt sources: CIDRs and bare addresses, IPv4-mapped peers match IPv4 entries', () => {
  const set = new SourceSet(['127.0.0.1', '10.1.0.0/16', '2001:db8::/48']);
  assert.ok(set.has('127.0.0.1'));
  assert.ok(set.has('::ffff:127.0.0.1'));
  assert.ok(!set.has('127.0.0.2'));
  assert.ok(set.has('10.1.200.3'));
  assert.ok(!set.has('10.2.0.1'));
  assert.ok(set.has('2001:db8:0:ffff::1'));
  assert.ok(!set.has('2001:db9::1'));
  assert.ok(!new SourceSet([]).has('127.0.0.1'));
  for (const bad of ['10.0.0.0/33', '::/129', 'host.example', '10.0.0.0/8/1', '10.0.0.0/x', '']) assert.equal(parseCidr(bad), null, bad);
});

const SETTINGS = { penaltyFailures: 10, penaltyWindowMs: 60_000, penaltyMs: 5000, penaltyMaxMs: 40_000 };

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

test('penalties: the 10th failure of a burst earns 5 s; concurrent failures do not extend it; repeats double up to the cap', () => {
  const c = clock();
  const book = new SourceBook(SETTINGS, c.now);
  for (let i = 0; i < 9; i++) assert.equal(book.failed('a'), 0);
  assert.equal(book.penalisedFor('a'), 0, 'nine failures are not yet a pattern');
  assert.equal(book.failed('a'), 5000);
  assert.equal(book.penalisedFor('a'), 5000);
  assert.equal(book.penalisedFor('b'), 0, 'another source is not touched');
  for (let i = 0; i < 5; i++) assert.equal(book.failed('a'), 0, 'in-flight failures while penalised');
  c.advance(5000);
  assert.equal(book.penalisedFor('a'), 0);
  const got: number[] = [];
  for (let round = 0; round < 5; round++) {
    let ms = 0;
    for (let i = 0; i < 10 && ms === 0; i++) ms = book.failed('a');
    got.push(ms);
    c.advance(ms);
  }
  assert.deepEqual(got, [10_000, 20_000, 40_000, 40_000, 40_000], 'doubling, capped at penaltyMaxMs');
  assert.equal(book.penalisedCount(), 0);
});

test('penalties: failures spread thinner than the rate never add up; strikes are forgotten after a clean spell', () => {
  const c = clock();
  const book = new SourceBook(SETTINGS, c.now);
  for (let i = 0; i < 100; i++) {
    assert.equal(book.failed('slow'), 0, `failure ${i}`);
    c.advance(6500); // a bit under 10 per minute
  }
  for (let i = 0; i < 10; i++) book.failed('x');
  c.advance(5000);
  for (let i = 0; i < 10; i++) book.failed('x');
  assert.equal(book.penalisedFor('x'), 10_000, 'second strike');
  c.advance(10_000 + SETTINGS.penaltyMaxMs + 1);
  let ms = 0;
  for (let i = 0; i < 10; i++) ms = book.failed('x') || ms;
  assert.equal(ms, 5000, 'back to the first step');
});

test('credit: each host connected from a source, or within the last hour, raises its failure threshold; one key earns one', () => {
  const c = clock();
  const book = new SourceBook(SETTINGS, c.now);
  for (let i = 0; i < 100; i++) book.succeeded('nat', 'web1');
  assert.equal(book.credit('nat'), 1, 'the same host again and again is still one');
  for (let i = 2; i <= 30; i++) book.succeeded('nat', `web${i}`);
  assert.equal(book.credit('nat'), 30);
  for (let i = 0; i < 39; i++) assert.equal(book.failed('nat'), 0, `failure ${i}: a fleet of 30 behind one address tolerates 40 in a burst`);
  assert.equal(book.failed('nat'), 5000);
  c.advance(2 * CREDIT_TTL_MS);
  assert.equal(book.credit('nat'), 30, 'connected hosts keep their credit however long they stay');
  for (let i = 2; i <= 30; i++) book.left('nat', `web${i}`);
  for (let i = 0; i < 99; i++) book.left('nat', 'web1');
  assert.equal(book.credit('nat'), 30, 'for an hour after they left (web1 still has one of its 100 sessions)');
  c.advance(CREDIT_TTL_MS / 2);
  book.succeeded('nat', 'web2');
  book.left('nat', 'web1');
  c.advance(CREDIT_TTL_MS / 2 + 1);
  assert.equal(book.credit('nat'), 2, 'web2 came back, web1 left half an hour ago; the others are gone for more than an hour');
  book.left('nat', 'web1');
  c.advance(CREDIT_TTL_MS / 2);
  assert.equal(book.credit('nat'), 1, 'a second left() of a host with no session does not renew its credit');
  book.sweep();
  assert.equal(book.size, 1);
  book.left('nat', 'web2');
  c.advance(CREDIT_TTL_MS + 1);
  book.sweep();
  assert.equal(book.size, 0, 'nothing left to remember');
  book.recall('10.0.0.1', 'db1');
  book.recall('10.0.0.1', 'db2');
  assert.equal(book.credit('10.0.0.1'), 2, 'recalled after a restart');
  c.advance(CREDIT_TTL_MS + 1);
  assert.equal(book.credit('10.0.0.1'), 0, 'for an hour');
});

test('fair queue: weighted by credit, a NAT with 20 hosts gets 21 turns for each of a stranger\'s', () => {
  const q = new FairQueue<string>();
  for (let s = 0; s < 50; s++) for (let i = 0; i < 10; i++) q.push(`stranger${s}`, `s${s}.${i}`);
  for (let i = 0; i < 500; i++) q.push('nat', `n${i}`, 21);
  // 50 strangers with weight 1 and the NAT with 21: the NAT's share is 21/71.
  const first = Array.from({ length: 355 }, () => q.shift()!);
  const nat = first.filter((x) => x.startsWith('n')).length;
  assert.ok(nat >= 90 && nat <= 120, `the NAT got ${nat} of the first 355 turns against 50 strangers`);
  q.drain();
  for (let i = 0; i < 10; i++) q.push('a', `a${i}`);
  assert.equal(q.shift(), 'a0');
  q.push('late', 'l0');
  assert.equal(q.shift(), 'l0', 'a source that just arrived does not wait for the others\' backlog');
});

test('fair queue: one source\'s 500 entries do not stand in front of another\'s one', () => {
  const q = new FairQueue<string>();
  for (let i = 0; i < 500; i++) q.push('flood', `f${i}`);
  q.push('agent', 'a0');
  assert.equal(q.length, 501);
  assert.equal(q.sources, 2);
  const first = [q.shift(), q.shift()];
  assert.ok(first.includes('a0'), `served: ${first.join(', ')}`);
  assert.equal(q.shift(), 'f1', 'per source, oldest first');
  assert.equal(q.largest(), 'flood');
  assert.equal(q.shiftFrom('flood'), 'f2');
  assert.ok(q.remove('flood', 'f250'));
  assert.ok(!q.remove('flood', 'f250'));
  assert.equal(q.length, 496);
  assert.equal(q.drain().length, 496);
  assert.equal(q.length, 0);
  assert.equal(q.shift(), undefined);
});

test('hub.json limits: defaults, overrides, unknown keys and bad values are refused with the field named', () => {
  assert.deepEqual(validateLimits(undefined, 'hub.json'), { ...DEFAULT_HUB_LIMITS, exempt: [] });
  const l = validateLimits({ perSourceUnauthenticated: 256, exempt: ['127.0.0.1/32', '::1'] }, 'hub.json');
  assert.equal(l.perSourceUnauthenticated, 256);
  assert.equal(l.handshakeTimeoutMs, 10_000);
  assert.deepEqual(l.exempt, ['127.0.0.1/32', '::1']);
  assert.equal(validateHubConfig({ limits: { bannerTimeoutMs: 2000 } }).limits?.bannerTimeoutMs, 2000);
  const bad: Array<[unknown, RegExp]> = [
    [{ perSourceLimit: 3 }, /unknown setting "perSourceLimit"/],
    [{ maxHandshakes: 0 }, /"maxHandshakes" must be an integer in 1\.\.4096/],
    [{ bannerTimeoutMs: '5s' }, /"bannerTimeoutMs" must be an integer/],
    [{ earlyDropPercent: 101 }, /earlyDropPercent/],
    [{ bannerTimeoutMs: 20_000 }, /"bannerTimeoutMs" \(20000\) must not exceed "handshakeTimeoutMs"/],
    [{ earlyDropQueued: 2000 }, /"earlyDropQueued" \(2000\) must not exceed "maxQueued"/],
    [{ penaltyMs: 600_000 }, /"penaltyMs" \(600000\) must not exceed "penaltyMaxMs"/],
    [{ exempt: ['10.0.0.0/40'] }, /"exempt": "10\.0\.0\.0\/40" is not an address or CIDR/],
    [{ exempt: '127.0.0.1' }, /"exempt" must be a list/],
    // The other parts of the one section (issue 13 parts 2-4).
    [{ sessionQueuedMessages: 1 }, /"sessionQueuedMessages" must be an integer in 2\.\./],
    [{ sessionOverrunBytes: 1024 }, /"sessionOverrunBytes" must be an integer/],
    [{ jobOutputTailBytes: 9 * 1024 * 1024 }, /"jobOutputTailBytes" \(9437184\) must be at most half of "jobOutputBytes"/],
    [{ hostOutputBytes: 1024 * 1024 }, /"hostOutputBytes" \(1048576\) must be at least "jobOutputBytes"/],
    [{ followerBufferBytes: 100 }, /"followerBufferBytes" must be an integer/],
    [[], /must be an object/],
  ];
  for (const [raw, re] of bad) {
    assert.throws(() => validateHubConfig({ limits: raw }), (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && re.test(err.message) && /"limits"/.test(err.message), JSON.stringify(raw));
  }
});
