// The answers to a batch of routed triggers (hub/cluster/routing-codec.ts),
// read at the asking hub: a reply that does not answer every host sent is
// refused whole (a short one would leave hosts waiting for nothing), and a
// holding hub's refusal of the whole batch keeps its reason. The NATS path
// itself runs in test/integration/cluster-routing-batch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BentoError } from '../../common/protocol/errors.js';
import { MAX_BATCH, parseAnswer, parseBatch, parseBatchReply, refusal } from '../../hub/cluster/routing-codec.js';

const result = { host: 'web1', jobId: 'job-web1-x', disposition: 'dispatched', action: 'switch', offline: false, hub: 'hub-a' };

function code(fn: () => unknown): string {
  try { fn(); } catch (err) { return (err as BentoError).code; }
  return 'no error';
}

test('a batch reply must answer exactly the requests sent', () => {
  assert.deepEqual(parseBatchReply({ answers: [{ result }, { error: { code: 'HOST_OFFLINE', message: 'x' } }] }, 2).length, 2);
  assert.equal(code(() => parseBatchReply({ answers: [{ result }] }, 2)), 'PROTOCOL_MALFORMED');
  assert.equal(code(() => parseBatchReply({ answers: [{ result }, { result }, { result }] }, 2)), 'PROTOCOL_MALFORMED');
  assert.equal(code(() => parseBatchReply({ result }, 1)), 'PROTOCOL_MALFORMED');
  assert.equal(code(() => parseBatchReply([{ result }], 1)), 'PROTOCOL_MALFORMED');
});

test('a batch refused whole by the holding hub keeps its code and reason', () => {
  const refused = refusal(new BentoError('PROTOCOL_MALFORMED', 'routed triggers: batch must be an array'));
  try {
    parseBatchReply(refused, 3);
    assert.fail('accepted a refusal as answers');
  } catch (err) {
    assert.equal((err as BentoError).code, 'PROTOCOL_MALFORMED');
    assert.match((err as Error).message, /refused the batch: routed triggers: batch must be an array/);
  }
});

test('one answer: a result is validated, an unknown error code becomes INTERNAL, a long message is cut', () => {
  assert.deepEqual(parseAnswer({ result }), { result });
  assert.equal(code(() => parseAnswer({ result: { ...result, jobId: '../x' } })), 'PROTOCOL_MALFORMED');
  assert.equal(code(() => parseAnswer({ result: { ...result, disposition: 'ran' } })), 'PROTOCOL_MALFORMED');
  const odd = parseAnswer({ error: { code: 'NOT_A_CODE', message: 'y'.repeat(10_000) } });
  assert.ok('code' in odd);
  assert.equal(odd.code, 'INTERNAL');
  assert.equal(odd.message.length, 4096);
});

test('a batch is 1 to MAX_BATCH requests; each item is parsed on its own', () => {
  const ok = { host: 'web1', action: 'switch', queue: false };
  const items = parseBatch({ batch: [ok, { ...ok, host: 'a b' }, { ...ok, prebuilt: { storePath: '/etc/passwd' } }] });
  assert.deepEqual(items[0], ok);
  assert.ok(items[1] instanceof BentoError && items[1].code === 'PROTOCOL_MALFORMED');
  assert.ok(items[2] instanceof BentoError && /storePath/.test(items[2].message));
  assert.equal(parseBatch({ batch: Array.from({ length: MAX_BATCH }, () => ok) }).length, MAX_BATCH);
  assert.equal(code(() => parseBatch({ batch: Array.from({ length: MAX_BATCH + 1 }, () => ok) })), 'PROTOCOL_MALFORMED');
  assert.equal(code(() => parseBatch({ batch: [] })), 'PROTOCOL_MALFORMED');
  assert.equal(code(() => parseBatch({ batch: 'web1' })), 'PROTOCOL_MALFORMED');
});
