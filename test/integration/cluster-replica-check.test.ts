// A view loaded from a replica that holds older records than the stream's
// leader (nats-server 2.9.10 after kill -9 and restart; docs/cluster.md
// "Reads from a replica that diverged") shows the leader's records once it
// is loaded (hub/cluster/kv-verify.ts), on a real 3-node cluster.
//
// The server is made to diverge with the recipe of cluster-diverge-helpers.ts
// (racing guarded writes while a follower is killed and restarted), each
// write carrying a counter that grows per key, so an older record is one with
// a lower counter. A plain reader (no RecordProgress, what every hub was
// before the check) whose watch runs on the restarted replica shows what that
// replica holds: that is how the test knows the replica diverged this time
// (the server does not always: the recipe is tried again). Then a reader
// whose store checks its records (as the jobs and holds stores do), its
// watch on the same replica, must show no record older than the leader's
// once open() resolved; before the check it showed them until the key
// changed again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { leaderKeys, leaderLast } from '../../hub/cluster/kv-leader.js';
import type { KeyedStore, RecordProgress } from '../../hub/store/types.js';
import { killFollowerUnderRace, openDivergeRig, placeWatchOn } from './cluster-diverge-helpers.js';
import { captureLog } from '../helpers/log-capture.js';

const PREFIX = 'rc';
const BUCKET = `${PREFIX}_state`;
const STREAM = `KV_${BUCKET}`;
interface Rec { n: number }
const isRec = (_k: string, v: unknown): v is Rec => typeof (v as Rec | null)?.n === 'number';
const PROGRESS: RecordProgress<Rec> = { settled: () => false, ahead: (l, v) => l.n > v.n, irreversible: () => false };
/** The race's keys (cluster-diverge-helpers.ts racingGuardedWrites: 6 workers, 40 keys each). */
const KEYS = Array.from({ length: 6 }, (_, w) => Array.from({ length: 40 }, (_, k) => `race-${w}-${k}`)).flat();
/**
 * The recipe, follower by follower. In the 12 runs of this test so far, a
 * follower killed for the first time in a fresh cluster was never left
 * behind; killed a second time it held 20 records older than the leader's in
 * 9 of 14, or lacked 20 records in 4 (later kills of that follower kept
 * so; caught since the check also lists the leader's keys, and this test now
 * takes either as the scenario); the other follower, killed after that, held
 * 20 older records in 3 of 3. So after two kills of one follower the other
 * one is tried. Every run reached the scenario.
 */
const FOLLOWERS: ReadonlyArray<1 | 2> = [1, 1, 2, 2, 1, 1];

test('on a healthy cluster a reload\'s check lists the leader\'s keys and finds none absent: deleted keys are not looked up again', { timeout: 120_000 }, async () => {
  const debug = captureLog('debug');
  const rig = await openDivergeRig({ prefix: `${PREFIX}h`, log: debug.log });
  try {
    const writer = await rig.a.openKeyed<Rec>('state', { accept: isRec, progress: PROGRESS });
    for (let i = 0; i < 30; i++) await writer.set(`k${i}`, { n: i });
    for (let i = 0; i < 10; i++) await writer.delete(`k${i}`);
    const keys = (await leaderKeys(rig.jsm, `KV_${PREFIX}h_state`, `${PREFIX}h_state`)).sort();
    assert.deepEqual(keys, Array.from({ length: 30 }, (_, i) => `k${i}`).sort(), 'the leader lists every key, the 10 deleted ones too');
    const before = debug.lines().length;
    const { s, close } = await rig.openWithStore<Rec>('reader', 'state', isRec, PROGRESS);
    try {
      assert.equal([...s.values()].length, 20);
      const done = debug.lines().slice(before).find((l) => l['bucket'] === `${PREFIX}h_state` && l['msg'] === 'checked the records just loaded against the stream leader');
      assert.ok(done, 'the reload was checked');
      assert.deepEqual([done['absent'], done['found']], [0, 0], 'every listed key was delivered by the reload (deleted ones as deletions): none looked up');
    } finally {
      await close();
    }
  } finally {
    await rig.close();
  }
});

/** Every store's warnings, kept to find the check's correction. */
const { log, lines } = captureLog('warn');

/** Keys whose record in S is older than the leader's (by the counter), newer (a write the leader refused), and keys S lacks. */
function behind(s: KeyedStore<Rec>, leader: Map<string, number>): { older: string[]; newer: string[]; missing: string[] } {
  const older: string[] = [];
  const newer: string[] = [];
  const missing: string[] = [];
  for (const [k, n] of leader) {
    const v = s.get(k);
    if (!v) missing.push(k);
    else if (v.n < n) older.push(k);
    else if (v.n > n) newer.push(k);
  }
  return { older, newer, missing };
}

test('a reader whose watch runs on a replica holding older records, or lacking some, shows the leader\'s once loaded', { timeout: 600_000 }, async () => {
  const rig = await openDivergeRig({ prefix: PREFIX, log });
  const { cluster, nc, jsm } = rig;
  try {
    await (await rig.a.openKeyed<Rec>('state', { accept: isRec })).settled(); // the bucket exists
    const attempts: string[] = [];
    let proven: { older: number; missing: number; correctedLogged: number } | null = null;
    for (let attempt = 1; attempt <= FOLLOWERS.length && !proven; attempt++) {
      const { node, refused } = await killFollowerUnderRace({ cluster, nc, bucket: BUCKET, value: (_w, i) => JSON.stringify({ n: i }), follower: FOLLOWERS[attempt - 1]! });
      const name = cluster.nodes[node]!.name;
      // The race is over: what the leader holds is final.
      const leader = new Map<string, number>();
      for (const k of KEYS) {
        const r = await leaderLast(jsm, STREAM, `$KV.${BUCKET}.${k}`);
        if (r?.kind === 'PUT' && isRec(k, r.value)) leader.set(k, r.value.n);
      }
      const plain = await placeWatchOn({ jsm, stream: STREAM, name, tries: 15, open: (i) => rig.openWithStore(`plain${attempt}-${i}`, 'state', isRec) });
      if (!plain) { attempts.push(`${name}: no watch placed there`); continue; }
      const raw = behind(plain.s, leader);
      await plain.close();
      attempts.push(`${name}: ${refused} refused when applied; a plain reader there: ${raw.older.length} of ${leader.size} records older than the leader's, ${raw.newer.length} newer, ${raw.missing.length} missing`);
      if (raw.older.length === 0 && raw.missing.length === 0) continue;

      const before = lines().length;
      const checked = await placeWatchOn({ jsm, stream: STREAM, name, tries: 15, open: (i) => rig.openWithStore(`checked${attempt}-${i}`, 'state', isRec, PROGRESS) });
      if (!checked) { attempts.push(`${name}: no checked reader placed there`); continue; }
      const seen = behind(checked.s, leader);
      await checked.close();
      const corrections = lines().slice(before).filter((l) => l['bucket'] === BUCKET && typeof l['corrected'] === 'number');
      console.log(`# ${attempts.join('; ')}`);
      assert.deepEqual(seen.older, [], `a checked reader on ${name} shows no record older than the leader's`);
      assert.deepEqual(seen.missing, [], `a checked reader on ${name} shows every record the replica lacks (the leader's keys are listed)`);
      // The checked reader did load older or missing records there, and the check corrected them (the replica stays behind for good).
      proven = { older: raw.older.length, missing: raw.missing.length, correctedLogged: corrections.reduce((a, l) => a + (l['corrected'] as number) + ((l['found'] as number | undefined) ?? 0), 0) };
      assert.ok(proven.correctedLogged > 0, 'the correction was logged');
    }
    console.log(`# ${attempts.join('; ')}`);
    console.log(`# ${proven ? `diverged: ${proven.older} records older on the replica, ${proven.missing} missing, ${proven.correctedLogged} corrected at load` : 'the replica never held older or missing records'}`);
    assert.ok(proven, `nats-server never left older or missing records on the restarted replica in ${FOLLOWERS.length} tries, so the scenario did not happen: ${attempts.join('; ')}`);
  } finally {
    await rig.close();
  }
});
