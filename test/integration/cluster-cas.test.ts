// Compare-and-swap between hubs on a real 3-node cluster, raced hard: six
// hubs (six connections, spread over the three servers) write the same key
// from the same revision at once, round after round. Exactly one may win each
// round. Debian's nats-server 2.9.10 checks "expected last subject sequence"
// only before proposing a write to its replicas (nats-server#4320, fixed in
// 2.9.21), so several racing writes all passed it: 94 of 200 rounds had more
// than one winner. The store must stay exact anyway (kv-cas.ts).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import type { KeyedStore } from '../../hub/store/types.js';
import { startNatsCluster } from '../fixtures/nats.js';
import { waitFor } from '../helpers/proc.js';

interface Rec { n: number; by?: number }
const isRec = (_k: string, v: unknown): v is Rec => typeof (v as Rec | null)?.n === 'number';

const cluster = await startNatsCluster();
const backends: NatsStateBackend[] = [];
after(async () => {
  for (const b of backends) await b.close();
  await cluster.stop();
});

const HUBS = 6;
const stores: Array<KeyedStore<Rec>> = [];
for (let i = 0; i < HUBS; i++) {
  // Each hub on its own server first, so the racing writes enter the cluster at different servers.
  const servers = [cluster.urls[i % cluster.urls.length]!, ...cluster.urls];
  const b = await NatsStateBackend.open(parseClusterOptions({ servers, hubName: `hub-${i}`, prefix: 'cas' }), silentLogger());
  backends.push(b);
  stores.push(await b.openKeyed<Rec>('race', { accept: isRec }));
}

function outcome(results: Array<PromiseSettledResult<number>>): { winners: number[]; codes: string[] } {
  const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  const codes = results.flatMap((r) => (r.status === 'rejected' ? [r.reason instanceof BentoError ? r.reason.code : String(r.reason)] : []));
  return { winners, codes };
}

test('six hubs update one key from the same revision: exactly one wins each round, the rest get STATE_CONFLICT', async () => {
  const bad: string[] = [];
  for (let round = 0; round < 60; round++) {
    const key = `u${round}`;
    const base = await stores[0]!.set(key, { n: 0 });
    await waitFor('every hub saw the base', () => stores.every((s) => s.entry(key)?.revision === base) || null, 10_000, 5);
    const { winners, codes } = outcome(await Promise.allSettled(stores.map((s, i) => s.set(key, { n: 1, by: i }, { expectRevision: base }))));
    if (winners.length !== 1 || codes.some((c) => c !== 'STATE_CONFLICT')) bad.push(`round ${round}: winners ${winners.join(',')}, errors ${codes.join(',')}`);
    else await waitFor('every view shows the winner', () => stores.every((s) => s.get(key)?.by === winners[0]) || null, 10_000, 5);
  }
  assert.deepEqual(bad, []);
});

test('six hubs create one key at once (expectRevision 0): exactly one wins each round', async () => {
  const bad: string[] = [];
  for (let round = 0; round < 60; round++) {
    const key = `c${round}`;
    const { winners, codes } = outcome(await Promise.allSettled(stores.map((s, i) => s.set(key, { n: 1, by: i }, { expectRevision: 0 }))));
    if (winners.length !== 1 || codes.some((c) => c !== 'STATE_CONFLICT')) bad.push(`round ${round}: winners ${winners.join(',')}, errors ${codes.join(',')}`);
  }
  assert.deepEqual(bad, []);
});

test('six hubs re-create a deleted key at once: exactly one wins each round', async () => {
  const bad: string[] = [];
  for (let round = 0; round < 30; round++) {
    const key = `d${round}`;
    await stores[0]!.set(key, { n: 0 });
    await stores[0]!.delete(key);
    await waitFor('every hub saw the deletion', () => stores.every((s) => !s.has(key)) || null, 10_000, 5);
    const { winners, codes } = outcome(await Promise.allSettled(stores.map((s, i) => s.set(key, { n: 1, by: i }, { expectRevision: 0 }))));
    if (winners.length !== 1 || codes.some((c) => c !== 'STATE_CONFLICT')) bad.push(`round ${round}: winners ${winners.join(',')}, errors ${codes.join(',')}`);
  }
  assert.deepEqual(bad, []);
});

test('a CAS write still wins while other keys of the bucket are written all the time', async () => {
  let stop = false;
  let noisy = 0;
  const noise = (async () => {
    for (let i = 0; !stop; i++) { await Promise.all(stores.map((s, h) => s.set(`noise-${h}`, { n: i }))); noisy += stores.length; }
  })();
  const t0 = Date.now();
  let casMs = 0;
  try {
    for (let round = 0; round < 20; round++) {
      const key = `busy${round}`;
      const r = await stores[1]!.set(key, { n: 0 });
      const c0 = Date.now();
      const r2 = await stores[2]!.set(key, { n: 1 }, { expectRevision: r });
      casMs += Date.now() - c0;
      assert.ok(r2 > r);
      await assert.rejects(stores[3]!.set(key, { n: 2 }, { expectRevision: r }), (e: unknown) => e instanceof BentoError && e.code === 'STATE_CONFLICT');
    }
  } finally {
    stop = true;
    await noise;
  }
  const secs = (Date.now() - t0) / 1000;
  console.log(`# CAS under ${Math.round(noisy / secs)} other writes/s to the same bucket: ${Math.round(casMs / 20)} ms per winning CAS on average (server ${backends[0]!.nc.info?.version})`);
});
