// What the cluster puts on the wire and in names, without NATS: key escaping
// into subject tokens, the job output batch format, cluster events validated
// at the edge, and the server versions whose CAS check is exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterNames, decodeToken, encodeToken } from '../../hub/cluster/names.js';
import { decodeBatch, encodeBatch, takeBatch, withinBytes } from '../../hub/cluster/output-batch.js';
import { decodeEvent, encodeEvent } from '../../hub/cluster/event-codec.js';
import { exactSubjectCheck } from '../../hub/cluster/kv-cas.js';
import type { HubEvent } from '../../hub/events/types.js';
import type { OutputLine } from '../../hub/store/types.js';

const TOKEN = /^[A-Za-z0-9_-]+$/; // valid as a subject token and as a KV key

test('keys become subject tokens one to one; host names and job ids stay readable', () => {
  const keys = ['web1', 'job-AbC_12-xyz', '', '_', '__', 'a.b', 'a*b>c', 'sp ace', 'ünï', '✓', '_41', 'a/b=c', '-'];
  const tokens = keys.map(encodeToken);
  assert.equal(new Set(tokens).size, keys.length, 'no two keys share a token');
  for (const [i, t] of tokens.entries()) {
    assert.match(t, TOKEN, `token for ${JSON.stringify(keys[i])}`);
    assert.equal(decodeToken(t), keys[i]);
  }
  assert.equal(encodeToken('web-1'), 'web-1');
  assert.equal(encodeToken('a.b'), 'a_2Eb');
  assert.ok(!tokens.includes('__'), '"__" stays free for "no job" in event subjects');
});

test('tokens no encoder made are refused', () => {
  for (const t of ['a.b', '_4', '_zz', '_2e', 'a b', '_C3', '*']) assert.equal(decodeToken(t), null, t);
});

test('names: buckets, output and event subjects sit under the prefix; filters match what publish uses', () => {
  const n = clusterNames('fleet-1');
  assert.equal(n.bucket('jobs'), 'fleet-1_jobs');
  assert.equal(n.kvSubject('fleet-1_jobs', 'a.b'), '$KV.fleet-1_jobs.a_2Eb');
  assert.equal(n.outputSubject('job-1'), 'fleet-1.out.job-1');
  assert.equal(n.eventSubject('web1', null), 'fleet-1.ev.web1.__');
  assert.equal(n.eventSubject('web1', 'job-1'), 'fleet-1.ev.web1.job-1');
  assert.equal(n.eventFilter({ all: true }), 'fleet-1.ev.>');
  assert.equal(n.eventFilter({ host: 'web1' }), 'fleet-1.ev.web1.*');
  assert.equal(n.eventFilter({ jobId: 'job-1' }), 'fleet-1.ev.*.job-1');
  assert.throws(() => clusterNames('a.b'));
  assert.throws(() => n.bucket('x y'));
});

test('output batches: lines round-trip; a batch stays under the size limit but always takes one line', () => {
  const lines: OutputLine[] = [
    { seq: 7, stream: 'stdout', data: 'plain', ts: 1_700_000_000_000 }, { seq: 8, stream: 'stderr', data: '! not "stderr"\n\ttab', ts: 1_700_000_000_001 },
    { seq: 9, stream: 'note', data: 'bento: a note', ts: 1_700_000_000_002 }, { seq: 10, stream: 'stdout', data: '', ts: null },
  ];
  const b = decodeBatch(encodeBatch(lines));
  assert.deepEqual(b, { first: 7, lines: lines.map(({ stream, data, ts }) => ({ stream, data, ts })) });
  // A batch written before lines had a time (and before notes) is still read.
  const old = decodeBatch(new TextEncoder().encode(JSON.stringify({ f: 1, l: [[0, 'a'], [1, 'b']] })));
  assert.deepEqual(old, { first: 1, lines: [{ stream: 'stdout', data: 'a', ts: null }, { stream: 'stderr', data: 'b', ts: null }] });
  const queue = Array.from({ length: 100 }, (_, i): OutputLine => ({ seq: i + 1, stream: 'stdout', data: 'x'.repeat(100), ts: 1_700_000_000_000 }));
  const first = takeBatch(queue, 1000);
  assert.ok(first.length >= 7 && first.length <= 8, `${first.length} lines (with their times) in 1000 bytes`);
  assert.ok(encodeBatch(first).length <= 1000);
  assert.equal(queue[0]!.seq, first.length + 1, 'taken from the front');
  assert.equal(takeBatch([{ seq: 1, stream: 'stdout', data: 'y'.repeat(5000), ts: null }], 1000).length, 1);
});

test('output batches: anything else stored on a job subject is refused', () => {
  const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
  for (const bad of ['not json', { f: 0, l: [[0, 'a']] }, { f: 1, l: [] }, { f: 1, l: [[3, 'a']] }, { f: 1, l: [[0, 5]] }, { f: 1.5, l: [[0, 'a']] }, [1],
    { f: 1, l: [[0, 'a', -1]] }, { f: 1, l: [[0, 'a', 'noon']] }, { f: 1, l: [[0, 'a', 1, 2]] }]) {
    assert.equal(decodeBatch(enc(bad)), null, JSON.stringify(bad));
  }
});

test('withinBytes: whole lines while they fit, at least one', () => {
  const l = (data: string, seq: number): OutputLine => ({ seq, stream: 'stdout', data, ts: null });
  assert.deepEqual(withinBytes([l('one', 1), l('two', 2), l('three', 3)], 7).map((x) => x.seq), [1, 2]);
  assert.deepEqual(withinBytes([l('a long line', 1), l('b', 2)], 3).map((x) => x.seq), [1]);
  assert.equal(withinBytes([l('x', 1)], undefined).length, 1);
});

test('cluster events: valid ones pass, malformed ones are refused with a reason', () => {
  const good: HubEvent[] = [
    { kind: 'job', host: 'web1', event: { ev: 'output', host: 'web1', jobId: 'job-1', seq: 3, ts: 1_700_000_000_000, stream: 'stderr', data: 'x' } },
    { kind: 'job', host: 'web1', event: { ev: 'output', host: 'web1', jobId: 'job-1', seq: 4, ts: 1_700_000_000_001, stream: 'note', data: 'bento: x' } },
    { kind: 'job', host: 'web1', event: { ev: 'end', host: 'web1', jobId: 'job-1', outcome: 'success', exitCode: null, durationMs: 5 } },
    { kind: 'connected', host: 'db1', carrier: 'ssh', reconnect: true },
    { kind: 'changed', host: 'db1', action: 'switch' },
    { kind: 'changed', host: 'db1' },
  ];
  for (const e of good) assert.deepEqual(decodeEvent(encodeEvent(e)), { event: e });
  const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
  const bad: unknown[] = [
    { kind: 'nope', host: 'a' },
    { kind: 'changed' },
    { kind: 'changed', host: 'a', action: 'rm -rf' },
    { kind: 'job', host: 'a', event: { ev: 'output', host: 'a', jobId: 'j', seq: 0, ts: 1, stream: 'stdout', data: '' } },
    { kind: 'job', host: 'a', event: { ev: 'output', host: 'b', jobId: 'j', seq: 1, ts: 1, stream: 'stdout', data: '' } },
    { kind: 'job', host: 'a', event: { ev: 'output', host: 'a', jobId: 'j', seq: 1, stream: 'stdout', data: '' } },
    { kind: 'job', host: 'a', event: { ev: 'output', host: 'a', jobId: 'j', seq: 1, ts: 1, stream: 'debug', data: '' } },
    { kind: 'job', host: 'a', event: { ev: 'end', host: 'a', jobId: 'j', outcome: 'maybe', exitCode: 0, durationMs: 1 } },
    { kind: 'connected', host: 'a', carrier: 'ssh' },
    [],
  ];
  for (const b of bad) assert.ok('problem' in decodeEvent(enc(b)), JSON.stringify(b));
  assert.ok('problem' in decodeEvent(new TextEncoder().encode('{')));
});

test('the CAS guard is needed below nats-server 2.9.21 (nats-server#4320)', () => {
  for (const v of ['2.9.10', '2.9.20', 'v2.9.0', '2.8.4', undefined, 'garbage']) assert.equal(exactSubjectCheck(v), false, String(v));
  for (const v of ['2.9.21', '2.9.25', '2.10.0', '2.11.8-alpine', '3.0.0']) assert.equal(exactSubjectCheck(v), true, v);
});
