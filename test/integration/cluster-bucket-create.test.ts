// Several hubs (or CLI calls) creating the same new buckets at once, on a
// real 3-node JetStream cluster: every one of them opens within seconds.
// nats-server 2.9 answers only one of several concurrent creates of a stream
// (nats-io/nats-server#3677); the others got no reply at all, and with one
// long attempt each waited out the whole write deadline (10 s by default)
// before trying again: found as add-host calls run side by side on a fresh
// cluster taking 12 s instead of 2. Creates are now short attempts, retried.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { startNatsCluster } from '../fixtures/nats.js';

const cluster = await startNatsCluster();
after(() => cluster.stop());

const ROUNDS = 5;
const OPENERS = 6;
// A long write deadline, so a create waiting one out is unmistakable; the bound is far below it and
// far above a lost reply now (one 2 s attempt, seldom two). On the old code 3 of 6 rounds had one.
const WRITE_TIMEOUT_MS = 30_000;
const BOUND_MS = 10_000;

test(`${OPENERS} backends open the same new keyed store and object store at once, ${ROUNDS} rounds: each within ${BOUND_MS / 1000} s`, async () => {
  const slow: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const prefix = `bc${round}x${process.pid}`;
    // Each opener starts at another server, as hubs spread over the servers do.
    const backends = await Promise.all(Array.from({ length: OPENERS }, (_, i) => NatsStateBackend.open(parseClusterOptions({
      servers: [...cluster.urls.slice(i % 3), ...cluster.urls.slice(0, i % 3)], hubName: `hub${i}`, prefix, replicas: 3, writeTimeoutMs: WRITE_TIMEOUT_MS,
    }), silentLogger())));
    try {
      const took = await Promise.all(backends.map(async (b, i) => {
        const t0 = Date.now();
        const s = await b.openKeyed<{ n: number }>('things', { accept: (_k, v): v is { n: number } => typeof (v as { n?: unknown }).n === 'number' });
        await s.set(`k${i}`, { n: i });
        await b.openObjectStore('blobs');
        return Date.now() - t0;
      }));
      process.stdout.write(`# round ${round}: opened in ${took.join(', ')} ms\n`);
      for (const [i, ms] of took.entries()) if (ms > BOUND_MS) slow.push(`round ${round}, opener ${i}: ${ms} ms`);
    } finally {
      await Promise.allSettled(backends.map((b) => b.close()));
    }
  }
  assert.deepEqual(slow, [], 'no opener waits out a lost reply to its create');
});
