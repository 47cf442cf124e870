// A driver current again after a freeze whose view of the rollouts has not
// caught up with a takeover yet (docs/rollouts.md, "Several hubs"): its
// heartbeat came back through the hubs bucket, while the takeover is in the
// rollouts bucket, and NATS orders the two buckets' deliveries independently.
// Before, such a driver still wrote a host's record the new driver had not
// touched (the fence compared against its own view only; found by review).
// Now a host's record is written only after the rollout's epoch was read at
// the store itself (the stream leader in a cluster). The views lag here as a
// cluster hub's do (test/helpers/lagging-view.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BentoError } from '../../common/protocol/errors.js';
import { RolloutStore } from '../../hub/rollout/store.js';
import { newRollout } from '../../hub/rollout/plan.js';
import type { MemberRecord, RolloutRecord } from '../../hub/rollout/records.js';
import { laggingHubs } from '../helpers/lagging-view.js';
import { everyHost, options } from '../helpers/rollout-world.js';

const member = (r: RolloutRecord, host: string, epoch: number, state: MemberRecord['state']): MemberRecord => ({
  kind: 'member', rollout: r.id, host, wave: 0, state, jobId: null, since: new Date().toISOString(), reason: null, health: null, epoch,
});

test('a driver whose view has not seen the takeover yet writes no host record: the rollout\'s epoch is read at the store', async () => {
  const shared = laggingHubs();
  const [h1, h2] = [shared.hub(), shared.hub()];
  // Both hubs may act (hub1 is current again: its heartbeat came back).
  const s1 = await RolloutStore.open(h1.backend, { driving: { hub: 'hub1', mayAct: () => true } });
  const s2 = await RolloutStore.open(h2.backend, { driving: { hub: 'hub2', mayAct: () => true } });
  try {
    const r: RolloutRecord = { ...newRollout('r1', { hosts: ['a', 'b'], selection: everyHost, options: options() }), driver: { hub: 'hub1', run: 'run-hub1', epoch: 1 } };
    await s1.save(r);
    await s1.saveMember(member(r, 'a', 1, 'running'));
    // hub2 sees it all, then takes the rollout over (epoch 2) while hub1's view of the bucket is held back.
    await waitForView(() => s2.get('r1')?.driver?.epoch === 1 && s2.member('r1', 'a') !== undefined);
    h1.hold();
    const taken = await s2.claim(s2.get('r1')!, { driver: { hub: 'hub2', run: 'run-hub2' } });
    assert.equal(taken?.driver?.epoch, 2, 'hub2 took the rollout over');
    assert.equal(s1.get('r1')?.driver?.epoch, 1, 'hub1\'s view does not show the takeover yet');
    // hub1, still on epoch 1, records b (a host hub2 has not touched) and a's result.
    for (const m of [member(r, 'b', 1, 'running'), { ...member(r, 'a', 1, 'healthy'), jobId: 'j1' }]) {
      await assert.rejects(s1.saveMember(m), (err: unknown) => err instanceof BentoError && err.code === 'STATE_CONFLICT' && /epoch 2 > 1, at the store/.test(err.message), `hub1 writes ${m.host}'s record under epoch 1`);
    }
    await assert.rejects(s1.forget('r1', 'a', 1), (err: unknown) => err instanceof BentoError && err.code === 'STATE_CONFLICT');
    const kv = shared.kv<MemberRecord>('rollouts')!;
    assert.equal(kv.get('r1/b'), undefined, 'no record of b under the old epoch');
    assert.equal(kv.get('r1/a')?.state, 'running', 'a\'s record as hub1 left it before the takeover');
    // The new driver writes under its epoch.
    await s2.saveMember(member(r, 'b', 2, 'running'));
    assert.equal(kv.get('r1/b')?.epoch, 2);
    h1.release();
  } finally {
    await s1.close(); await s2.close();
    await shared.close();
  }
});

async function waitForView(cond: () => boolean): Promise<void> {
  for (const t0 = Date.now(); !cond(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() - t0 > 5000) throw new Error('the view did not catch up within 5 s');
  }
}
