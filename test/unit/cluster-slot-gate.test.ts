// The bulk-write gate (hub/cluster/slot-gate.ts): at most `limit` writes in
// flight, the rest served in order as slots free, a waiter that gets no slot
// in time is told so (null) and leaves the queue, a release counts once.
// That the holds store's writes bypass it on real NATS, so a hub keeps its
// lease during a 45,000-host fan-out, is the cluster bench (docs/performance.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlotGate, type Release } from '../../hub/cluster/slot-gate.js';

test('at most limit slots; waiters are served in order as slots are released; a double release frees one slot', async () => {
  const gate = new SlotGate(2);
  const a = (await gate.acquire(100))!;
  const b = (await gate.acquire(100))!;
  assert.deepEqual(gate.stats, { inFlight: 2, waiting: 0 });
  const order: string[] = [];
  const c = gate.acquire(1000).then((r) => { order.push('c'); return r; });
  const d = gate.acquire(1000).then((r) => { order.push('d'); return r; });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(gate.stats, { inFlight: 2, waiting: 2 });
  assert.deepEqual(order, [], 'nobody gets a third slot');
  a();
  a(); // counted once
  const rc = (await c)!;
  assert.deepEqual(order, ['c']);
  assert.deepEqual(gate.stats, { inFlight: 2, waiting: 1 });
  b();
  const rd = (await d)!;
  assert.deepEqual(order, ['c', 'd']);
  rc();
  rd();
  assert.deepEqual(gate.stats, { inFlight: 0, waiting: 0 });
});

test('a waiter that gets no slot within its time gets null and leaves the queue; the slot goes to the next one', async () => {
  const gate = new SlotGate(1);
  const held = (await gate.acquire(10))!;
  const late = await gate.acquire(30);
  assert.equal(late, null);
  assert.deepEqual(gate.stats, { inFlight: 1, waiting: 0 });
  const next = gate.acquire(1000);
  held();
  const r: Release | null = await next;
  assert.ok(r, 'the next waiter got the freed slot');
  r();
  assert.deepEqual(gate.stats, { inFlight: 0, waiting: 0 });
  assert.throws(() => new SlotGate(0), /positive integer/);
});
