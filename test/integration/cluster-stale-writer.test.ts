// A hub that lost a host must never overwrite the newer claim's job record,
// on Debian's nats-server 2.9.10 too, where "expected last subject sequence"
// is checked only before a write is proposed (nats-server#4320; kv-cas.ts).
// A hub's later writes under its own claim skip the bucket-wide guard
// (jobs.ts, soleWriter), so a stale hub's write can pass that early check
// while the newer hub's write is between proposal and apply, and land after
// it. The job store must still end every round with the newer claim's record.
//
// Real nats-server cluster, real job stores on two connections (two servers).
// The fences are fixed stamps: hub "a" still believes it holds the host under
// epoch 1 (it has not seen the takeover yet: frozen, slow, its watch behind),
// hub "b" took it over under epoch 2. That belief is exactly the stale writer.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { newJobIdBody } from '../../common/protocol/names.js';
import type { JobRecord } from '../../hub/store/jobs.js';
import { fencedJobHubs } from '../helpers/fenced-job-hubs.js';
import { waitFor } from '../helpers/proc.js';

const hubs = await fencedJobHubs('stale');
after(() => hubs.close());
const hub = hubs.hub;

test('a stale hub (epoch 1) racing the hub that took the host over (epoch 2): the newer record is the one that stays', async () => {
  const a = await hub('a', 1, 0);
  const b = await hub('b', 2, 1);
  const bad: string[] = [];
  const ROUNDS = 80;
  for (let round = 0; round < ROUNDS; round++) {
    const base: JobRecord = {
      id: newJobIdBody(), host: 'web1', action: 'switch', state: 'dispatched', requestedAt: new Date().toISOString(),
      startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null,
    };
    await a.save(base);
    await a.save({ ...base, state: 'running', startedAt: new Date().toISOString() });
    const seen = a.get(base.id)!;
    await waitFor('b sees a\'s record', () => (b.get(base.id)?.state === 'running' ? true : null), 10_000, 2);
    // At once: a writes its result under its old claim, b settles the job under its new one.
    const [ra, rb] = await Promise.allSettled([
      a.save({ ...seen, state: 'success', endedAt: new Date().toISOString(), exitCode: 0 }),
      b.save({ ...seen, state: 'interrupted', endedAt: new Date().toISOString(), reason: 'taken over' }),
    ]);
    if (rb.status === 'rejected') {
      bad.push(`round ${round}: the newer claim's write failed: ${String(rb.reason)}`);
      continue;
    }
    // Both writes are settled (landed or refused): nothing of either is in flight any more.
    await Promise.all([a.settled(), b.settled()]);
    const final = await waitFor('both views agree', () => {
      const x = a.get(base.id);
      const y = b.get(base.id);
      return x && y && JSON.stringify(x) === JSON.stringify(y) ? y : null;
    }, 10_000, 2).catch((err: Error) => {
      // Say which view kept what (and what each write did): the record alone tells which side is stale.
      throw new Error(`round ${round}: ${err.message}\n  a (epoch 1) sees ${JSON.stringify(a.get(base.id))}\n  b (epoch 2) sees ${JSON.stringify(b.get(base.id))}\n  a's write: ${ra.status}, b's write: ${rb.status}`);
    });
    if (final.epoch !== 2 || final.state !== 'interrupted') {
      bad.push(`round ${round}: the record ended as hub ${final.hub} epoch ${final.epoch} ${final.state} (a's write ${ra.status})`);
    }
  }
  assert.deepEqual(bad, [], `${bad.length} of ${ROUNDS} rounds`);
});
