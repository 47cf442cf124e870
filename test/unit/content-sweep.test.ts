// The sweep's rules on their own (hub/cluster/content-sweep.ts), with an
// in-memory list of object infos: edge cases a real store rarely shows. The
// real object stores and the stream leader are in
// test/integration/cluster-content-sweep.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sweepObjects, type SweepDeps } from '../../hub/cluster/content-sweep.js';
import type { ObjectMeta } from '../../hub/cluster/object-scan.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');
const H = 'a'.repeat(64);

let seq = 0;
function info(name: string, mtime: string, deleted = false): ObjectMeta {
  return { name, mtime, deleted, size: 10, nuid: `n${++seq}`, seq };
}

/** A store's scan over these infos, as backend.scanObjects yields them. */
function scanOf(infos: ObjectMeta[]): () => AsyncIterable<ObjectMeta> {
  return async function* () { yield* infos; };
}

const base = { isItem: (i: string) => i === H, keptInView: () => false, minAgeMs: 3_600_000, dryRun: false, now: NOW };

test('an unreadable time counts as young; deleted entries are not counted; a failed delete or leader read is reported and the rest goes on', async () => {
  const removed: string[] = [];
  const objects = {
    scan: scanOf([
      info(`web1/${H}`, 'not a time'),
      info(`web2/${H}`, '2026-12-07T10:00:00Z', true),
      info(`web3/${H}`, '2026-12-07T10:00:00Z'),
      info(`web4/${H}`, '2026-12-07T10:00:00Z'),
      info(`web5/${H}`, '2026-12-07T10:00:00Z'),
    ]),
    deleteScanned: async ({ name }: ObjectMeta) => {
      if (name.startsWith('web3/')) throw new Error('NATS did not answer');
      removed.push(name);
      return true;
    },
  } satisfies SweepDeps['objects'];
  const r = await sweepObjects({ ...base, objects, keptAtLeader: async (host: string) => { if (host === 'web5') throw new Error('no leader'); return null; } });
  assert.equal(r.objects, 4, 'the deleted entry is not an object');
  assert.deepEqual(r.young.map((o) => o.host), ['web1']);
  assert.deepEqual(r.removed.map((o) => [o.name, o.ageS]), [[`web4/${H}`, 7200]]);
  assert.deepEqual(removed, [`web4/${H}`]);
  assert.deepEqual(r.failed.map((o) => [o.host, o.error]), [['web3', 'NATS did not answer'], ['web5', 'no leader']]);
});

test('names that are not HOST/ITEM are foreign and never removed; the leader is asked once per host', async () => {
  const asked: string[] = [];
  const objects = {
    scan: scanOf([info('readme', '2020-01-01T00:00:00Z'), info(`-bad/${H}`, '2020-01-01T00:00:00Z'), info('web1/short', '2020-01-01T00:00:00Z'),
      info(`web2/${H}`, '2020-01-01T00:00:00Z'), info(`web2/${'b'.repeat(64)}`, '2020-01-01T00:00:00Z')]),
    deleteScanned: async () => { throw new Error('must not delete'); },
  } satisfies SweepDeps['objects'];
  const r = await sweepObjects({
    ...base, objects, isItem: (i: string) => /^[ab]{64}$/.test(i),
    keptAtLeader: async (host: string) => { asked.push(host); return new Set([H, 'b'.repeat(64)]); },
  });
  assert.deepEqual([r.objects, r.foreign, r.kept, r.keptByLeader, r.removed.length, r.failed.length], [5, 3, 2, 2, 0, 0]);
  assert.deepEqual(asked, ['web2']);
});

test('the report lists at most listLimit objects of each kind; its counts and bytes are complete', async () => {
  let deleted = 0;
  const hosts = Array.from({ length: 25 }, (_, i) => `web${i}`);
  const objects = {
    scan: scanOf([...hosts.map((h) => info(`${h}/${H}`, '2026-12-07T10:00:00Z')), ...hosts.map((h) => info(`${h}/${H}`, '2026-12-07T11:59:00Z'))]),
    deleteScanned: async () => { deleted++; return true; },
  } satisfies SweepDeps['objects'];
  const r = await sweepObjects({ ...base, objects, listLimit: 10, keptAtLeader: async () => null });
  assert.equal(deleted, 25);
  assert.deepEqual([r.removed.length, r.young.length, r.failed.length], [10, 10, 0]);
  assert.deepEqual(r.counts, { young: 25, removed: 25, removedBytes: 250, failed: 0 });
  assert.deepEqual(r.removed.map((o) => o.host), hosts.slice(0, 10));
});

test('a delete is decided on a fresh read at the leader, and only the version scanned is deleted', async () => {
  // web1: the host's first read has no record, the read right before the delete has one keeping the
  // object (a deploy reusing it set its record meanwhile). web2: no record either time, but the object
  // was refreshed since the scan (the store refuses to delete that version): it stays, counted young.
  const reads = new Map<string, number>();
  const tried: ObjectMeta[] = [];
  const o1 = info(`web1/${H}`, '2026-12-07T10:00:00Z');
  const o2 = info(`web2/${H}`, '2026-12-07T10:00:00Z');
  const objects = {
    scan: scanOf([o1, o2]),
    deleteScanned: async (o: ObjectMeta) => { tried.push(o); return false; },
  } satisfies SweepDeps['objects'];
  const r = await sweepObjects({
    ...base, objects,
    keptAtLeader: async (host: string) => {
      const n = (reads.get(host) ?? 0) + 1;
      reads.set(host, n);
      return host === 'web1' && n > 1 ? new Set([H]) : null;
    },
  });
  assert.deepEqual([...reads], [['web1', 2], ['web2', 2]], 'one read per host, one more before each delete');
  assert.deepEqual(tried, [o2], 'the delete names the version scanned (its nuid and sequence)');
  assert.deepEqual([r.kept, r.keptByLeader, r.removed.length, r.counts.removed], [1, 1, 0, 0]);
  assert.deepEqual(r.young.map((o) => [o.name, o.ageS]), [[`web2/${H}`, 0]]);
});
