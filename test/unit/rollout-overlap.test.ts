// Two hubs starting overlapping rollouts at once (docs/rollouts.md, "Several
// hubs"): each hub's view of the rollout stores lags behind the stores (as a
// cluster hub's view lags behind its KV buckets: test/helpers/lagging-view.ts),
// so neither start sees the other's rollout. Before host claims both were
// accepted and the shared host had a turn in each (switched twice); now
// exactly one is, the other is refused with ROLLOUT_CONFLICT. Plus the
// claims' life: released when the rollout ends, taken over once left behind,
// released by a start refused part-way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BentoError } from '../../common/protocol/errors.js';
import { MemoryState } from '../../hub/store/memory-backend.js';
import { RolloutStore } from '../../hub/rollout/store.js';
import { localDriving } from '../../hub/rollout/driver.js';
import type { HostClaim } from '../../hub/rollout/records.js';
import { laggingHubs } from '../helpers/lagging-view.js';
import { clusterDriving, everyHost, options, settle, startsOf, world } from '../helpers/rollout-world.js';

const CLAIMS = 'rollout-claims';

test('two hubs start overlapping rollouts at the same moment, neither seeing the other\'s: exactly one starts, the shared host switches once', async () => {
  for (let round = 0; round < 20; round++) {
    const w = await world(new MemoryState(), ['a', 'b', 'c', 'd']);
    const shared = laggingHubs();
    // Each write takes 0-4 ms to reach the shared store, so the two starts' claims interleave (each may get part of b and c).
    const writeDelay = () => Math.floor(Math.random() * 5);
    const [h1, h2] = [shared.hub({ writeDelay }), shared.hub({ writeDelay })];
    const [s1, s2] = [await RolloutStore.open(h1.backend), await RolloutStore.open(h2.backend)];
    const alive = new Set(['hub1', 'hub2']);
    const A = w.engine(clusterDriving('hub1', alive), { store: s1 });
    const B = w.engine(clusterDriving('hub2', alive), { store: s2 });
    await A.start(); await B.start();
    // Neither hub sees the other's writes until the moment a write takes to arrive has passed.
    h1.hold(); h2.hold();
    const arrive = setTimeout(() => { h1.release(); h2.release(); }, 100);
    // b is the canary of both: each rollout that starts switches it at once. The order of the two varies per round.
    const [first, second] = round % 2 ? [A, B] : [B, A];
    const results = await Promise.allSettled([
      first.create({ hosts: ['b', 'a', 'c'], selection: everyHost, options: options() }),
      second.create({ hosts: ['b', 'c', 'd'], selection: everyHost, options: options() }),
    ]);
    clearTimeout(arrive);
    h1.release(); h2.release();
    await settle(100);
    const started = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    assert.equal(started.length, 1, `round ${round}: ${started.length} of 2 started (${started.map((r) => r.value.id).join(', ')})${started.length === 2 ? ': host b has a turn in each' : ''}; refused: ${refused.map((e) => e.message).join('; ')}`);
    assert.ok(refused[0] instanceof BentoError && refused[0].code === 'ROLLOUT_CONFLICT', `round ${round}: refused with ${refused[0]?.message}`);
    assert.equal(startsOf(w.live.get('b')).length, 1, `round ${round}: b switched once`);
    const id = started[0]!.value.id;
    assert.deepEqual(s1.all().map((r) => r.id), [id], 'hub1 shows the one rollout');
    assert.deepEqual(s2.all().map((r) => r.id), [id], 'hub2 shows the one rollout');
    // The refused start released what it had claimed: only the rollout that started has claims.
    const claims = shared.kv<HostClaim>(CLAIMS)!;
    assert.deepEqual([...claims.values()].map((c) => c.rollout).filter((r) => r !== id), [], 'no claim of the refused start is left');
    assert.deepEqual([...claims.keys()].sort(), started[0]!.value.waves.flat().sort());
    await w.close();
    await s1.close(); await s2.close();
    await shared.close();
  }
});

test('a rollout\'s claims are released when it ends, so its hosts can be rolled out again', async () => {
  const w = await world(new MemoryState(), ['a', 'b']);
  const e = w.engine(localDriving('hub1'));
  await e.start();
  const r = await e.create({ hosts: ['a', 'b'], selection: everyHost, options: options() });
  assert.deepEqual([...w.store.claims.keys()].sort(), ['a', 'b']);
  assert.ok([...w.store.claims.values()].every((c) => c.rollout === r.id));
  await e.abort(r.id);
  await settle(200); // the sweep (every 50 ms here) releases the claims of a finished rollout
  assert.deepEqual([...w.store.claims.keys()], [], 'claims of an aborted rollout released');
  const r2 = await e.create({ hosts: ['b'], selection: everyHost, options: options() });
  assert.equal(w.store.claims.get('b')?.rollout, r2.id);
  await w.close();
});

test('a claim left behind by a start that never finished holds for a while, then is taken over; a refused start releases what it claimed', async () => {
  const w = await world(new MemoryState(), ['a', 'b', 'c']);
  const e = w.engine(localDriving('hub1'));
  await e.start();
  const claim = (host: string, rollout: string, agoMs: number) => w.store.claims.set(host, { rollout, hub: 'hub9', run: 'gone', at: new Date(Date.now() - agoMs).toISOString(), lapseMs: 60_000 }, { expectRevision: 0 });
  // hub9 claimed c a moment ago and has not written its rollout yet (in progress, or its record on its way).
  await claim('c', 'r-2222222a', 1000);
  await assert.rejects(e.create({ hosts: ['a', 'c'], selection: everyHost, options: options() }),
    (err: BentoError) => err.code === 'ROLLOUT_CONFLICT' && /r-2222222a, being started at hub hub9, has claimed c/.test(err.message));
  assert.equal(w.store.claims.get('a'), undefined, 'the refused start released its claim on a');
  assert.equal(w.store.all().length, 0);
  // hub9 died two minutes ago between its claim and its record: the claim lapsed.
  await claim('b', 'r-2222222b', 120_000);
  const r = await e.create({ hosts: ['b'], selection: everyHost, options: options() });
  assert.equal(w.store.claims.get('b')?.rollout, r.id, 'the lapsed claim was taken over');
  await w.close();
});
