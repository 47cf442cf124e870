// A replaced bucket watch on a renumbered replica must not skip other hubs'
// changes (docs/cluster.md "Keyed stores", "Open points"), on a real 3-node
// cluster of Debian's nats-server 2.9.10.
//
// The server renumbers a restarted replica (cluster-diverge-helpers.ts): hub
// b's watch runs there, numbering the stream above the other replicas. Then
// that server is killed (-9), so b's watch must be replaced, and hub a
// changes a record and deletes another. Before the fix, the new watch resumed
// "after the last revision seen", a revision of the dead replica's numbering,
// far ahead of the survivors': it delivered nothing (and the watchdog, which
// compared the bucket's last revision with it, saw nothing to catch up), so
// b's view kept the old record for good. Now every new watch reloads the
// bucket's last value per key and reconciles by content.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, silentLogger } from '../../common/platform/log.js';
import type { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import type { KeyedStore, StoreChange } from '../../hub/store/types.js';
import { sleep, waitFor } from '../helpers/proc.js';
import { killFollowerUnderRace, openDivergeRig, placeWatchOn } from './cluster-diverge-helpers.js';

const PREFIX = 'wr';
const BUCKET = `${PREFIX}_state`;
const STREAM = `KV_${BUCKET}`;
const log = process.env['BENTO_TEST_LOG'] ? createLogger({ name: 'watch-reload', level: 'debug' }) : silentLogger();
interface Rec { n: number }
const isRec = (_k: string, v: unknown): v is Rec => typeof (v as Rec | null)?.n === 'number';

test('kill -9 of the renumbered server holding a hub\'s watch: the replaced watch shows another hub\'s changes', { timeout: 180_000 }, async () => {
  const rig = await openDivergeRig({ prefix: PREFIX, log });
  const { cluster, nc, jsm } = rig;
  try {
    const sa = await rig.a.openKeyed<Rec>('state', { accept: isRec });
    await sa.set('target', { n: 0 });
    await sa.set('doomed', { n: 0 });

    // Hub b's watch on a restarted replica that numbers the stream above the leader.
    let hub: { b: NatsStateBackend; s: KeyedStore<Rec>; node: number } | null = null;
    const attempts: string[] = [];
    for (let attempt = 1; attempt <= 4 && !hub; attempt++) {
      const { node, refused } = await killFollowerUnderRace({ cluster, nc, bucket: BUCKET, value: '{"n":-1}' });
      const name = cluster.nodes[node]!.name;
      const atLeader = await sa.set(`probe${attempt}`, { n: attempt });
      const placed = await placeWatchOn({
        jsm, stream: STREAM, name, tries: 15,
        open: (i) => rig.openWithStore(`hub-b${attempt}-${i}`, 'state', isRec),
      });
      if (!placed) { attempts.push(`${name}: no watch placed there`); continue; }
      let inView = 0;
      for (let i = 0; i < 100 && (inView = placed.s.entry(`probe${attempt}`)?.revision ?? 0) === 0; i++) await sleep(100);
      attempts.push(`${name}: ${refused} refused when applied; probe at ${inView} there, ${atLeader} at the leader`);
      if (inView > atLeader) hub = { b: placed.b, s: placed.s, node };
      else await placed.close();
    }
    console.log(`# ${attempts.join('; ')}`);
    assert.ok(hub, `nats-server never numbered the restarted replica above the leader, so the scenario did not happen: ${attempts.join('; ')}`);
    const sb = hub.s;
    assert.deepEqual(sb.get('target'), { n: 0 });
    const heard: Array<StoreChange<Rec>> = [];
    sb.watch((c) => { if (c.key === 'target' || c.key === 'doomed') heard.push(c); });

    // The renumbered server dies: b's watch must be replaced; a changes what b holds.
    const killedAt = Date.now();
    await cluster.kill(hub.node);
    for (let n = 1; n <= 5; n++) {
      await sa.set('target', { n });
      await sleep(300);
    }
    await sa.delete('doomed');
    const wroteAt = Date.now();
    await waitFor('hub b shows hub a\'s changes', () => (sb.get('target')?.n === 5 && !sb.has('doomed')) || null, 45_000, 50);
    console.log(`# hub b's view showed a's last change ${Date.now() - wroteAt} ms after it was written (${Date.now() - killedAt} ms after the kill)`);

    const values = heard.filter((c) => c.key === 'target').map((c) => (c.op === 'set' ? c.value.n : -1));
    assert.deepEqual(values, [...values].sort((x, y) => x - y), `target's changes in order, each once: ${values.join(',')}`);
    assert.equal(new Set(values).size, values.length, `no change reported twice: ${values.join(',')}`);
    assert.equal(values.at(-1), 5);
    assert.deepEqual(heard.filter((c) => c.key === 'doomed').map((c) => c.op), ['delete'], 'the deletion reported once');
  } finally {
    await rig.close();
  }
});
