// The holding hub's answers to routed triggers, kept for repeats
// (hub/cluster/routed-answers.ts): a repeat of a request gets the first one's
// answer, also while that one is still coming; a refusal is not kept (it
// started nothing); entries expire, and however many ids other hubs send,
// at most `max` are kept, the oldest going first. And the wire: the id
// travels with the request, is echoed in the answer, and a hub of an
// earlier version (no id) is read as before (hub/cluster/routing-codec.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoutedAnswers } from '../../hub/cluster/routed-answers.js';
import { encodeAnswer, encodeRequest, parseReply, parseRequest } from '../../hub/cluster/routing-codec.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a repeat gets the first answer, also before it came; a refusal is forgotten once it is known', async () => {
  const a = new RoutedAnswers<string>({ ttlMs: 60_000, max: 10 });
  let resolve!: (v: string) => void;
  const first = new Promise<string>((r) => { resolve = r; });
  a.put('r1 web1', first, (v) => v !== 'refused');
  const repeat = a.get('r1 web1');
  assert.ok(repeat, 'kept while still coming');
  resolve('job-1');
  assert.equal(await repeat, 'job-1');
  await settle();
  assert.equal(await a.get('r1 web1'), 'job-1', 'kept once answered');

  a.put('r2 web1', Promise.resolve('refused'), (v) => v !== 'refused');
  await settle();
  assert.equal(a.get('r2 web1'), undefined, 'a refusal started nothing: a repeat may try again');
  a.put('r3 web1', Promise.reject(new Error('boom')), () => true);
  await settle();
  assert.equal(a.get('r3 web1'), undefined, 'a failure is not kept either');
});

test('entries expire after ttlMs', async () => {
  let now = 1000;
  const a = new RoutedAnswers<string>({ ttlMs: 60_000, max: 10, now: () => now });
  a.put('old', Promise.resolve('job-old'), () => true);
  now += 30_000;
  a.put('newer', Promise.resolve('job-newer'), () => true);
  await settle();
  now += 29_999;
  assert.equal(await a.get('old'), 'job-old', 'still within its minute');
  now += 1;
  assert.equal(a.get('old'), undefined, 'a minute old: gone');
  assert.equal(await a.get('newer'), 'job-newer');
  assert.equal(a.size, 1);
  now += 60_000;
  assert.equal(a.size, 0);
});

test('bounded: however many ids arrive, at most max are kept, the oldest go first', async () => {
  let now = 0;
  const a = new RoutedAnswers<number>({ ttlMs: 60_000, max: 1000, now: () => now });
  for (let i = 0; i < 100_000; i++) {
    now += 0.1; // 10,000 a second, all within the ttl
    a.put(`id${i}`, Promise.resolve(i), () => true);
  }
  assert.equal(a.size, 1000);
  assert.equal(a.get('id98999'), undefined, 'the oldest went');
  assert.equal(await a.get('id99000'), 99_000);
  assert.equal(await a.get('id99999'), 99_999);
  // Refusals are not kept, but their place in the age queue is bounded too (2 * max): a stream of them pushes
  // the oldest kept answer out rather than grow the queue.
  const b = new RoutedAnswers<number>({ ttlMs: 60_000, max: 100, now: () => now });
  b.put('kept', Promise.resolve(1), () => true);
  for (let i = 0; i < 199; i++) {
    b.put(`refused${i}`, Promise.resolve(-1), (v) => v >= 0);
    await settle();
  }
  assert.equal(b.size, 1);
  assert.equal(await b.get('kept'), 1, 'within the queue\'s bound');
  b.put('one-more', Promise.resolve(-1), (v) => v >= 0);
  assert.equal(b.get('kept'), undefined, 'the queue holds at most 2 * max');
  await settle();
  assert.equal(b.size, 0);
  // An entry replaced under the same key is not dropped by the first one's refusal settling late.
  let refuse!: (v: number) => void;
  a.put('same', new Promise<number>((r) => { refuse = r; }), (v) => v >= 0);
  a.put('same', Promise.resolve(5), (v) => v >= 0);
  refuse(-1);
  await settle();
  assert.equal(await a.get('same'), 5);
});

test('the request id travels with the request and is echoed; requests and answers without one (earlier hubs) read as before', () => {
  const req = { host: 'web1', action: 'switch' as const, queue: false, jobId: 'Abcdefgh12345678' };
  const wire = JSON.parse(encodeRequest({ req, requestId: 'req_ABCDEFGH1234' })) as Record<string, unknown>;
  assert.equal(wire['requestId'], 'req_ABCDEFGH1234');
  assert.deepEqual(parseRequest(wire), { req, requestId: 'req_ABCDEFGH1234' });
  assert.deepEqual(parseRequest({ host: 'web1', action: 'switch', queue: false }), { req: { host: 'web1', action: 'switch', queue: false } }, 'an earlier hub\'s request');
  for (const bad of ['short', 'x'.repeat(65), 'has space', 42, 'a/b/c/d/e/f']) {
    assert.throws(() => parseRequest({ ...wire, requestId: bad }), /bad requestId/, String(bad));
  }
  const result = { host: 'web1', jobId: 'Abcdefgh12345678', disposition: 'dispatched' as const, action: 'switch' as const, offline: false, hub: 'hub1' };
  const echoed = parseReply(JSON.parse(encodeAnswer({ result }, 'req_ABCDEFGH1234')), 'req_ABCDEFGH1234');
  assert.deepEqual(echoed, { result, knew: true });
  assert.deepEqual(parseReply({ result }, 'req_ABCDEFGH1234'), { result, knew: false }, 'an earlier hub\'s answer: taken, but it did not know the id');
  const refusal = parseReply(JSON.parse(encodeAnswer({ error: { code: 'HOST_OFFLINE', message: 'not connected' } }, 'req_ABCDEFGH1234')), 'req_ABCDEFGH1234');
  assert.deepEqual(refusal, { code: 'HOST_OFFLINE', message: 'not connected', knew: true });
  assert.equal(parseReply(JSON.parse(encodeAnswer({ result }, 'req_OTHER0000000')), 'req_ABCDEFGH1234').knew, false, 'another request\'s id');
});
