// A rollout's trigger that lands late, after the hub that drove the rollout
// is gone (docs/rollouts.md, "A trigger that lands late"): 3 real hubs on a
// 3-node NATS cluster and a real agent. The host h is held by hub2, which is
// frozen (SIGSTOP, shorter than its lease: it stays current and alive) while
// hub1, driving a rollout of h, routes h's trigger to it: unanswered, the
// turn is forgotten (TRIGGER_UNCONFIRMED), the admin aborts the rollout at
// hub1 (h shows cancelled) and hub1 is killed (kill -9). Then hub2 runs
// again, takes the trigger it had been sent, and h switches. With no host
// running or queued, nothing else brings a driver to the aborted rollout:
// the late turn must, so the host's record ends up with its job and result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/proc.js';
import { adminRolloutStatus } from '../helpers/admin-query.js';
import { adminCall } from '../../hub/admin/client.js';
import { fleetPaths } from '../../hub/fleet/paths.js';
import { turnJobId } from '../../hub/rollout/records.js';

test('a trigger that lands after its rollout was aborted and its driving hub killed: the host\'s record gets the job and its result', async (t) => {
  // hubs' heartbeats every 2 s (lease 6 s, dead after 12 s), so a freeze of a few seconds keeps hub2 current;
  // agents' every 3 s (they drop a hub silent for 7.5 s); a routed trigger unanswered after 2 x 300 ms.
  const c = await TestCluster.create({ hubs: 3, livenessMs: 2000, heartbeatMs: 3000, clusterExtra: { routeTimeoutMs: 300 } });
  try {
    await c.addHosts(['h']);
    await c.startHubs();
    const runs = path.join(c.dir, 'h.runs');
    c.startAgent('h', await c.agentConfig('h', { rebuildCommand: ['/bin/sh', '-c', `echo "$1" >> '${runs}'; sleep 1`, 'rebuild'] }, [1]));
    await c.waitConnected(['h']);
    const admin = (i: number) => fleetPaths(c.hubs[i]!.fleetDir).adminSocket;
    const [hub1, hub2] = [c.hubs[0]!.daemon!, c.hubs[1]!.daemon!];

    hub2.child.kill('SIGSTOP');
    const frozenAt = Date.now();
    let id: string;
    try {
      const started = await adminCall(admin(0), { op: 'rollout.start', hosts: ['h'], all: false, tags: [], action: 'switch', follow: false }, 'rollout');
      id = started.rollout.id;
      await waitFor('hub1 says h\'s trigger is unconfirmed', () => /"msg":"a rollout host's trigger is unconfirmed/.test(hub1.output()), 10_000, 50);
      const aborted = await adminCall(admin(0), { op: 'rollout.abort', id }, 'rollout');
      assert.equal(aborted.rollout.state, 'aborted');
      assert.deepEqual(aborted.rollout.members.map((m) => [m.host, m.state, m.jobId]), [['h', 'cancelled', null]], 'the turn was forgotten: h shows cancelled');
      await c.killHub(0);
    } finally {
      hub2.child.kill('SIGCONT');
    }
    const frozenMs = Date.now() - frozenAt;
    t.diagnostic(`hub2 frozen for ${frozenMs} ms`);
    assert.ok(frozenMs < 4000, `hub2 was frozen ${frozenMs} ms, within its lease (else it refuses the trigger)`);

    const job = turnJobId({ id, round: 0 }, 'h');
    const since = Date.now();
    const seen = await waitFor('h healthy with its turn\'s job in the rollout, at hub3', async () => {
      const r = await adminRolloutStatus(c.hubs[2]!.fleetDir, id);
      const m = r.members[0]!;
      return m.state === 'healthy' && m.jobId === job ? r : null;
    }, 45_000, 250).catch(async (err: Error) => {
      const r = await adminRolloutStatus(c.hubs[2]!.fleetDir, id);
      throw new Error(`${err.message}; h is ${JSON.stringify(r.members[0])}; job records: ${JSON.stringify((await c.jobRecords()).map((j) => [j.id, j.state]))}`);
    });
    t.diagnostic(`h healthy in the rollout ${Date.now() - since} ms after hub2 ran again`);
    assert.equal(seen.state, 'aborted', 'it stays aborted');
    assert.notEqual(seen.driver, c.hubs[0]!.name, 'a surviving hub drives it now');
    const r2 = await adminRolloutStatus(c.hubs[1]!.fleetDir, id);
    assert.deepEqual(r2.members.map((m) => [m.host, m.state, m.jobId]), [['h', 'healthy', job]], 'hub2 sees the same');
    assert.deepEqual((await readFile(runs, 'utf8')).trim().split('\n'), ['switch'], 'h switched once');
    const records = (await c.jobRecords()).filter((j) => j.host === 'h');
    assert.deepEqual(records.map((j) => [j.id, j.state]), [[job, 'success']], 'one job of h, the turn\'s');
    const logs = c.hubs.filter((h) => h.daemon).map((h) => h.daemon!.output()).join('\n');
    assert.match(logs, /"msg":"took a finished rollout over to record a turn whose trigger landed late"/);
  } finally {
    await c.close();
  }
});
