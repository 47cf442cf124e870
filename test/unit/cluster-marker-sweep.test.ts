// The rules of purging old KV deletion markers (hub/cluster/marker-sweep.ts)
// with the bucket a function the test answers for: what is purged (a marker
// old enough that the stream leader still has as its key's last record, with
// a purge bounded by the leader's sequence), what stays (young, written again,
// purged meanwhile, failed), how many lookups run at once, and that every
// keyed store of the hub is swept. A create that meets a marker purged under
// it is made again (kv-rebase.ts). The real-NATS side:
// test/integration/cluster-marker-sweep.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JetStreamManager } from '@nats-io/jetstream';
import { KEYED_STORES, sweepMarkers, type MarkerSweepDeps } from '../../hub/cluster/marker-sweep.js';
import type { KeyRecord } from '../../hub/cluster/marker-scan.js';
import { rebaseOnLeader } from '../../hub/cluster/kv-rebase.js';
import { BentoError } from '../../common/protocol/errors.js';

const NOW = 10_000_000;
const rec = (key: string, seq: number, marker: boolean, ageMs: number): KeyRecord => ({ subject: `$KV.b.${key}`, seq, marker, atMs: NOW - ageMs });

function bucket(scanned: KeyRecord[], leader: Map<string, KeyRecord | null | Error>, o: Partial<MarkerSweepDeps> = {}): MarkerSweepDeps & { purges: Array<[string, number]>; lookups: string[] } {
  const purges: Array<[string, number]> = [];
  const lookups: string[] = [];
  return {
    purges, lookups,
    async *scan() { yield* scanned; },
    async leaderLast(subject) {
      lookups.push(subject);
      const r = leader.has(subject) ? leader.get(subject)! : scanned.find((s) => s.subject === subject) ?? null;
      if (r instanceof Error) throw r;
      return r;
    },
    async purgeBelow(subject, seq) { purges.push([subject, seq]); return 1; },
    minAgeMs: 3_600_000, dryRun: false, now: () => NOW,
    ...o,
  };
}

test('a marker older than --min-age is purged below the leader\'s sequence + 1; values, young markers and ones changed since stay', async () => {
  const scanned = [
    rec('live', 1, false, 7_200_000), rec('old', 2, true, 7_200_000), rec('young', 3, true, 60_000),
    rec('rewritten', 4, true, 7_200_000), rec('gone', 5, true, 7_200_000), rec('deleted-again', 6, true, 7_200_000),
    rec('renumbered', 7, true, 7_200_000), rec('unreadable-time', 8, true, NaN),
  ];
  const leader = new Map<string, KeyRecord | null | Error>([
    ['$KV.b.rewritten', rec('rewritten', 40, false, 0)],
    ['$KV.b.gone', null],
    ['$KV.b.deleted-again', rec('deleted-again', 41, true, 1000)],
    // The scan's replica numbers the stream otherwise (nats-server 2.9.10 after kill -9): the leader's sequence bounds the purge.
    ['$KV.b.renumbered', rec('renumbered', 17, true, 7_200_000)],
  ]);
  const b = bucket(scanned, leader);
  const r = await sweepMarkers(b);
  assert.deepEqual(r, { keys: 8, markers: 7, purged: 2, young: 3, changed: 2, failed: 0 });
  assert.deepEqual(b.purges.sort(), [['$KV.b.old', 3], ['$KV.b.renumbered', 18]]);
  assert.ok(!b.lookups.includes('$KV.b.young') && !b.lookups.includes('$KV.b.live'), 'young markers and values cost no lookup');
});

test('a dry run purges nothing and counts what it would; a purge that removes nothing (purged meanwhile) counts as changed', async () => {
  const scanned = [rec('a', 1, true, 7_200_000), rec('b', 2, true, 7_200_000)];
  const dry = bucket(scanned, new Map(), { dryRun: true });
  assert.deepEqual(await sweepMarkers(dry), { keys: 2, markers: 2, purged: 2, young: 0, changed: 0, failed: 0 });
  assert.deepEqual(dry.purges, []);
  const racing = bucket(scanned, new Map());
  racing.purgeBelow = async (subject) => (subject === '$KV.b.a' ? 0 : 1);
  assert.deepEqual(await sweepMarkers(racing), { keys: 2, markers: 2, purged: 1, young: 0, changed: 1, failed: 0 });
});

test('a failed lookup or purge is counted with the first error and the sweep goes on; min-age 0 takes every marker', async () => {
  const scanned = [rec('a', 1, true, 0), rec('b', 2, true, 0), rec('c', 3, true, 0)];
  const b = bucket(scanned, new Map([['$KV.b.a', new Error('leader away')]]), { minAgeMs: 0 });
  b.purgeBelow = async (subject) => { if (subject === '$KV.b.b') throw new Error('purge timed out'); return 1; };
  const r = await sweepMarkers(b);
  assert.deepEqual(r, { keys: 3, markers: 3, purged: 1, young: 0, changed: 0, failed: 2, error: 'leader away' });
});

test('at most inFlight markers are looked up and purged at once, and every one is done before the sweep answers', async () => {
  const scanned = Array.from({ length: 50 }, (_, i) => rec(`k${i}`, i + 1, true, 7_200_000));
  let now = 0;
  let most = 0;
  const b = bucket(scanned, new Map(), { inFlight: 4 });
  b.purgeBelow = async () => {
    most = Math.max(most, ++now);
    await new Promise((r) => setTimeout(r, 2));
    now--;
    return 1;
  };
  const r = await sweepMarkers(b);
  assert.equal(r.purged, 50);
  assert.ok(most <= 4 && most >= 2, `at most 4 at once (saw ${most})`);
  assert.equal(now, 0);
});

test('every keyed store a hub opens is swept: each *_STORE name in hub/ is in KEYED_STORES', async () => {
  // The compiled hub/ (dist/hub): a store added later without being listed here would keep its markers for good.
  const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'hub');
  const found = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.js')) for (const m of (await readFile(p, 'utf8')).matchAll(/export const [A-Z_]+_STORE = '([^']+)'/g)) found.add(m[1]!);
    }
  };
  await walk(root);
  assert.ok(found.size >= 10, `found ${[...found].join(', ')}`);
  assert.deepEqual([...found].filter((s) => !(KEYED_STORES as readonly string[]).includes(s)), []);
});

test('a create refused by a deletion marker that is purged before the leader is asked is made again on 0, not a conflict', async () => {
  const jsm = { streams: { getMessage: async () => null } } as unknown as JetStreamManager;
  const again = await rebaseOnLeader({
    jsm, stream: 'KV_b', bucket: 'b', renumbered: () => undefined,
    view: { basis: () => undefined, adopt: () => { throw new Error('nothing to adopt'); } },
  }, { key: 'k', subject: '$KV.b.k', expect: 0, conflictErr: new BentoError('STATE_CONFLICT', 'k changed') });
  assert.equal(again, 0);
});
