// An empty bucket's watch delivers nothing, so only the bucket's state can
// say the watch has caught up. When that state could not be read before the
// watch started (NATS just started, no stream leader yet), the follower
// waited for an entry that never came, and a hub of a fresh cluster did not
// start within 60 s (cluster-nats-faults, in a full test run). Now the
// watchdog's poll says it. The KV here is a stand-in for the client
// library's two calls (status, watch): the logic under test is the
// follower's; real buckets run it in every cluster integration test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KV } from '@nats-io/kv';
import { silentLogger } from '../../common/platform/log.js';
import { BucketFollower } from '../../hub/cluster/kv-watch.js';

test('a watch on an empty bucket is caught up even when the bucket could not be asked before it started', async () => {
  let asked = 0;
  const kv = {
    // The first ask fails (no stream leader yet); later ones answer: empty.
    status: async () => {
      asked++;
      if (asked === 1) throw new Error('no responders');
      return { streamInfo: { state: { messages: 0, last_seq: 0 } } };
    },
    // A watch that delivers nothing until stopped.
    watch: async () => {
      let stop!: () => void;
      const stopped = new Promise<void>((r) => { stop = r; });
      return {
        stop,
        async *[Symbol.asyncIterator]() { await stopped; },
      };
    },
  } as unknown as KV;
  let caughtUp = 0;
  const f = new BucketFollower({
    kv, bucket: 'b', log: silentLogger(), position: () => 0, leaderHoldsAt: async () => null,
    onStart: () => undefined, onEntry: () => undefined, onCaughtUp: () => { caughtUp++; },
  });
  f.start();
  try {
    for (let i = 0; i < 50 && caughtUp === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(caughtUp, 1, 'caught up within a poll or two (before: never)');
  } finally {
    await f.stop();
  }
});
