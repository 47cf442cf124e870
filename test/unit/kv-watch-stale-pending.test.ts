// A watch still loading whose last entry says "more pending" while it stands
// at the bucket's last revision: no later entry will say "nothing pending",
// so the load would never end. The watchdog let that be (it reads such a
// count as stale, which is right once the watch caught up: after a
// 15,000-host fan-out it only cost a needless reload), and said nothing: a
// hub could wait its whole 60 s load with no log line (docs/cluster.md,
// "did not load within 60000 ms"). Now a watch that has not caught up is
// replaced, logged. The KV here is a stand-in for the client library's two
// calls (status, watch), as in kv-watch-empty.test.ts: the logic under test
// is the follower's. A real server's stale count could not be produced on
// demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import { captureLog } from '../helpers/log-capture.js';
import { BucketFollower } from '../../hub/cluster/kv-watch.js';

/** Entries at revisions 1..3; the last says DELTA more are pending. */
function entries(lastDelta: number): KvWatchEntry[] {
  return [1, 2, 3].map((revision) => ({
    bucket: 'b', key: `k${revision}`, rawKey: `k${revision}`, value: new Uint8Array([revision]), revision, created: new Date(),
    delta: revision === 3 ? lastDelta : 3 - revision, operation: 'PUT', isUpdate: false, length: 1, string: () => '', json: () => null,
  } as unknown as KvWatchEntry));
}

test('a loading watch whose last entry says more is pending, at the bucket\'s last revision, is replaced (before: the load never ended)', async () => {
  let watches = 0;
  const kv = {
    status: async () => ({ streamInfo: { state: { messages: 3, last_seq: 3 } } }),
    // The first watch's count is stale (1 pending after the last revision); the next one's is right.
    watch: async () => {
      const list = entries(watches++ === 0 ? 1 : 0);
      let stop!: () => void;
      const stopped = new Promise<void>((r) => { stop = r; });
      return {
        stop,
        async *[Symbol.asyncIterator]() { yield* list; await stopped; },
      };
    },
  } as unknown as KV;
  let pos = 0;
  let caughtUp = 0;
  const { log, lines } = captureLog('warn');
  const f = new BucketFollower({
    kv, bucket: 'b', log, position: () => pos, leaderHoldsAt: async () => true,
    onStart: () => { pos = 0; }, onEntry: (e) => { pos = e.revision; }, onCaughtUp: () => { caughtUp++; },
  });
  f.start();
  try {
    for (let i = 0; i < 80 && caughtUp === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(caughtUp, 1, 'caught up by a second watch within the watchdog\'s few seconds');
    assert.equal(watches, 2);
    assert.ok(lines().some((l) => l.msg === 'bucket watch stalled (its server died?); replacing it'), 'and said so');
  } finally {
    await f.stop();
  }
});
