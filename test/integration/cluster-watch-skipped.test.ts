// A store's watchers hear every write of this hub, even one the bucket's watch
// never delivers (hub/cluster/kv-view-skipped.ts). Found in a full CI run:
// cluster-contract's "watch reports every change in revision order" saw a
// store write x, write y, delete x, and its watch report only y and the
// deletion. Not a stall: the bucket keeps one revision per key, and x's first
// revision was replaced before the watch's consumer read its replica (its
// server slow to start delivering, or applying the three writes at once),
// so the consumer went straight to y. Reproduced here every time by freezing
// (SIGSTOP) the consumer's server, a follower, while the writes are made
// (acknowledged by the other two) and thawing it after.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { silentLogger } from '../../common/platform/log.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import type { KeyedStore, StoreChange } from '../../hub/store/types.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { sleep } from '../helpers/proc.js';

interface Rec { n: number }
const isRec = (_k: string, v: unknown): v is Rec => typeof (v as Rec | null)?.n === 'number';

let nats: NatsCluster;
before(async () => { nats = await startNatsCluster(); });
after(async () => { await nats?.stop(); });

/** The node running the store's watch consumer (the bucket's only consumer). */
async function consumerNode(b: NatsStateBackend, stream: string): Promise<number> {
  const jsm = await jetstreamManager(b.nc);
  for await (const ci of jsm.consumers.list(stream)) return nats.nodes.findIndex((x) => x.name === ci.cluster?.leader);
  throw new Error(`${stream} has no consumer`);
}

/** A store on node 0 whose watch runs on another node, not the stream's leader. */
async function storeWatchedElsewhere(round: number): Promise<{ b: NatsStateBackend; s: KeyedStore<Rec>; frozen: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const prefix = `skip${round}x${attempt}`;
    const b = await NatsStateBackend.open(parseClusterOptions({ servers: [nats.urls[0]!], hubName: 'hub-a', prefix, replicas: 3 }), silentLogger());
    const s = await b.openKeyed<Rec>('watched', { accept: isRec });
    const stream = `KV_${prefix}_watched`;
    const c = await consumerNode(b, stream);
    if (c > 0) {
      if (await nats.streamLeader(stream) === c) {
        await b.nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, '', { timeout: 10_000 });
        for (let i = 0; i < 200 && await nats.streamLeader(stream).catch(() => c) === c; i++) await sleep(50);
      }
      if (await nats.streamLeader(stream) !== c) return { b, s, frozen: c };
    }
    await s.close();
    await b.close();
  }
  throw new Error('no store with its watch on a follower in 20 attempts');
}

test('writes of this hub the watch passes without delivering (replaced in the bucket first) are still reported, in revision order', async () => {
  // Three rounds: each froze the consumer's server and lost x's first revision on the old code.
  for (let round = 0; round < 3; round++) {
    const { b, s, frozen } = await storeWatchedElsewhere(round);
    try {
      const seen: Array<StoreChange<Rec>> = [];
      s.watch((c) => { seen.push(c); });
      const server = nats.nodes[frozen]!.daemon!.child;
      let r1 = 0;
      let r2 = 0;
      server.kill('SIGSTOP');
      try {
        r1 = await s.set('x', { n: 1 });
        r2 = await s.set('y', { n: 2 });
        await s.delete('x');
      } finally {
        server.kill('SIGCONT');
      }
      const deadline = Date.now() + 5000;
      while (seen.length < 3 && Date.now() < deadline) await sleep(20);
      assert.deepEqual(seen.map((c) => [c.op, c.key]), [['set', 'x'], ['set', 'y'], ['delete', 'x']], `round ${round}: ${JSON.stringify(seen)}`);
      assert.deepEqual(seen.slice(0, 2).map((c) => c.revision), [r1, r2]);
      assert.ok(seen[2]!.revision > r2);
      assert.deepEqual(s.get('y'), { n: 2 });
      assert.equal(s.has('x'), false);
    } finally {
      await s.close();
      await b.close();
    }
  }
});
