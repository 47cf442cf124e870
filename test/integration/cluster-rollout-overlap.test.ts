// Two admins starting overlapping rollouts at two hubs of a cluster at the
// same moment (docs/rollouts.md, "Several hubs"): 3 real hubs on a 3-node
// NATS cluster, real agents. Both requests go to the hubs' admin sockets at
// once, so each hub checks before the other's rollout can have reached its
// view; the per-host claims (hub/rollout/claims.ts) let exactly one start and
// refuse the other (ROLLOUT_CONFLICT). Each agent's rebuild appends a line to
// a file of its own: a shared host switched twice would show two lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/proc.js';
import { adminCall } from '../../hub/admin/client.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { RolloutDetail, RolloutSummary } from '../../common/protocol/rollout.js';

const HOSTS = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
/** Hub 1 rolls out w1-w4, hub 2 w3-w6: w3 and w4 are in both. */
const WANT = [HOSTS.slice(0, 4), HOSTS.slice(2)];
const ROUNDS = 4;

const runsOf = async (c: TestCluster, h: string): Promise<number> => (await readFile(path.join(c.dir, `${h}.runs`), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;

test('two hubs start overlapping rollouts at the same moment: one starts, the other is refused; each host switches once per rollout it is in', async () => {
  const c = await TestCluster.create({ hubs: 3 });
  try {
    await c.addHosts(HOSTS);
    await c.startHubs();
    for (const h of HOSTS) {
      const runs = path.join(c.dir, `${h}.runs`);
      c.startAgent(h, await c.agentConfig(h, { rebuildCommand: ['/bin/sh', '-c', `echo "$1" >> '${runs}'; sleep 0.3`, 'rebuild'] }));
    }
    await c.waitConnected(HOSTS);
    const expected = new Map(HOSTS.map((h) => [h, 0]));
    const started: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Both requests leave together; the order alternates so either hub may be first.
      const order = round % 2 ? [1, 0] : [0, 1];
      const results = await Promise.allSettled(order.map((i) => adminCall(path.join(c.hubs[i]!.fleetDir, 'hub.sock'), {
        op: 'rollout.start', hosts: WANT[i]!, all: false, tags: [], action: 'switch', follow: false, canary: '100%', maxInFlight: '10',
      }, 'rollout')));
      const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.rollout] : []));
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
      assert.equal(ok.length, 1, `round ${round}: ${ok.length} of two overlapping rollouts started (${ok.map((r) => r.id).join(', ')}); refused: ${refused.map((e) => e.message).join('; ')}`);
      assert.ok(refused[0] instanceof BentoError && refused[0].code === 'ROLLOUT_CONFLICT', `round ${round}: the other was refused with ${refused[0]?.message}`);
      const r: RolloutDetail = ok[0]!;
      started.push(r.id);
      for (const m of r.members) expected.set(m.host, expected.get(m.host)! + 1);
      await waitFor(`round ${round}: rollout ${r.id} done`, async () => {
        const s = await c.hubCli(0, ['rollout', 'status', r.id, '--json']);
        return s.code === 0 && (JSON.parse(s.stdout) as { rollout: RolloutDetail }).rollout.state === 'done';
      }, 60_000, 200);
    }
    for (const h of HOSTS) assert.equal(await runsOf(c, h), expected.get(h), `${h} switched once per rollout it was in`);
    // Every hub shows exactly the rollouts that started, each done with every host healthy.
    for (let i = 0; i < 3; i++) {
      const s = await c.hubCli(i, ['rollout', 'status', '--json']);
      assert.equal(s.code, 0, s.stderr);
      const all = (JSON.parse(s.stdout) as { rollouts: RolloutSummary[] }).rollouts;
      assert.deepEqual(all.map((x) => x.id).sort(), [...started].sort(), `hub${i + 1}'s rollouts`);
      assert.ok(all.every((x) => x.state === 'done' && x.counts.healthy === x.hosts), JSON.stringify(all));
    }
  } finally {
    await c.close();
  }
});
