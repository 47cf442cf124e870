// The cluster soak, short (CI): the same code as `npm run soak`
// (test/soak/soak.ts) with 3 cycles on a small fleet: a real 3-node NATS
// cluster, 3 real hubs, simulated agents running jobs under a steady trigger
// load; each cycle kills -9 a random hub (the second one a NATS server as
// well), restarts it, and checks every job accepted so far with the invariant
// checker's logic (test/helpers/cluster-invariants.ts): ended exactly once in
// one final state, the same at every hub, no job sent to an agent twice,
// every job an agent ran recorded as its result.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSoak } from '../soak/soak.js';
import { tmpDir } from '../helpers/proc.js';

test('soak: 3 kill -9 cycles (a hub each time, a NATS server in one) under a trigger load lose and duplicate no job', async () => {
  const tmp = await tmpDir('bento-soak-test-');
  try {
    const seed = Date.now() % 1_000_000;
    const r = await runSoak({
      dir: tmp.dir, hubs: 3, clients: 24, cycles: 3, natsEvery: 2, triggersPerS: 15, jobMs: 800, downMs: 1000,
      seed, workers: 2, nofile: 4096, log: (s) => console.log(s),
    });
    assert.deepEqual(r.problems, [], `seed ${seed}`);
    assert.equal(r.cycles.length, 3);
    assert.ok(r.cycles.some((c) => c.killedNats !== null), 'a NATS server was killed in one cycle');
    // The load was real: jobs were accepted in every cycle and every one of them is final and checked.
    const accepted = r.cycles.map((c) => c.check.accepted);
    assert.ok(accepted.every((n, i) => n > (accepted[i - 1] ?? 0)), `jobs accepted in every cycle: ${accepted.join(', ')}`);
    const last = r.cycles[2]!.check;
    assert.equal(Object.values(last.byState).reduce((s, n) => s + n, 0), last.accepted, 'every accepted job has a final record');
  } finally {
    await tmp.cleanup();
  }
});
