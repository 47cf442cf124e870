// The local view of a NATS keyed store (hub/cluster/kv-view.ts): the logic of
// merging this hub's pending writes, its acks and the bucket's watch, without
// NATS. The real-NATS behaviour is in test/integration/cluster-*.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RecordProgress, StoreChange } from '../../hub/store/types.js';
import { KvView } from '../../hub/cluster/kv-view.js';

interface Rec { n: number }
const isRec = (_k: string, v: unknown): v is Rec => typeof (v as Rec | null)?.n === 'number';

/** n only rises; n >= 10 is an outcome no write takes back (a finished job). */
const PROGRESS: RecordProgress<Rec> = { settled: (r) => r.n >= 10, ahead: (a, b) => a.n > b.n, irreversible: (r) => r.n >= 10 };

function view(progress?: RecordProgress<Rec>): { v: KvView<Rec>; changes: Array<StoreChange<Rec>>; refused: string[]; superseded: Array<[string, number]>; regressed: Array<[string, number, number, number]> } {
  const changes: Array<StoreChange<Rec>> = [];
  const refused: string[] = [];
  const superseded: Array<[string, number]> = [];
  const regressed: Array<[string, number, number, number]> = [];
  const v = new KvView<Rec>(isRec, {
    change: (c) => changes.push(c),
    refused: (k) => refused.push(k),
    superseded: (k, _gen, rev) => superseded.push([k, rev]),
    regressed: (k, kept, rev, found) => regressed.push([k, kept.n, rev, found.n]),
  }, progress);
  return { v, changes, refused, superseded, regressed };
}

test('a plain set shows at once with the revision it replaces; its ack gives it its own', () => {
  const { v } = view();
  v.fromWatch('a', 1, 'PUT', { n: 1 }, true);
  const gen = v.beginPlain('a', { op: 'set', value: { n: 2 } });
  assert.deepEqual(v.entry('a'), { value: { n: 2 }, revision: 1 });
  v.beginPlain('b', { op: 'set', value: { n: 3 } });
  assert.deepEqual(v.entry('b'), { value: { n: 3 }, revision: 0 });
  assert.equal(v.size, 2);
  v.acked('a', gen, 5, { op: 'set', value: { n: 2 } });
  assert.deepEqual(v.entry('a'), { value: { n: 2 }, revision: 5 });
});

test('a watch entry older than an applied ack does not roll the key back; a newer one wins', () => {
  const { v, changes } = view();
  const gen = v.beginPlain('k', { op: 'set', value: { n: 1 } });
  v.acked('k', gen, 7, { op: 'set', value: { n: 1 } });
  v.fromWatch('k', 4, 'PUT', { n: 0 }, true); // an older change, delivered late
  assert.deepEqual(v.entry('k'), { value: { n: 1 }, revision: 7 });
  v.fromWatch('k', 7, 'PUT', { n: 1 }, true);
  v.fromWatch('k', 9, 'PUT', { n: 2 }, true); // another hub, later
  assert.deepEqual(v.entry('k'), { value: { n: 2 }, revision: 9 });
  assert.deepEqual(changes.map((c) => c.revision), [4, 7, 9], 'watchers see every watch entry in order');
});

test('a deletion acked ahead of the watch leaves a tombstone: the late watch entry of the old value does not bring it back', () => {
  const { v } = view();
  v.fromWatch('k', 1, 'PUT', { n: 1 }, true);
  const g1 = v.beginPlain('k', { op: 'set', value: { n: 2 } });
  v.acked('k', g1, 2, { op: 'set', value: { n: 2 } });
  const g2 = v.beginPlain('k', { op: 'delete' });
  assert.equal(v.has('k'), false);
  v.acked('k', g2, 3, { op: 'delete' });
  v.fromWatch('k', 2, 'PUT', { n: 2 }, true);
  assert.equal(v.has('k'), false);
  v.fromWatch('k', 3, 'DEL', undefined, false);
  v.fromWatch('k', 4, 'PUT', { n: 4 }, true);
  assert.deepEqual(v.entry('k'), { value: { n: 4 }, revision: 4 });
});

test('a record the accept guard refuses reads as absent, and is reported', () => {
  const { v, refused, changes } = view();
  v.fromWatch('good', 1, 'PUT', { n: 1 }, true);
  v.fromWatch('bad', 2, 'PUT', { nope: true }, true);
  v.fromWatch('torn', 3, 'PUT', undefined, false);
  v.fromWatch('good', 4, 'PUT', 'not a record', true);
  assert.deepEqual([...v.keys()], []);
  assert.deepEqual(refused, ['bad', 'torn', 'good']);
  assert.deepEqual(changes.map((c) => [c.op, c.key]), [['set', 'good'], ['delete', 'bad'], ['delete', 'torn'], ['delete', 'good']]);
});

test('a failed write is superseded by a newer change of its key, not by a late delivery of an older one', () => {
  const { v, superseded } = view();
  // The hub's own set acked at 1 before the watch delivered it; then NATS went away.
  const g0 = v.beginPlain('kept', { op: 'set', value: { n: 1 } });
  v.acked('kept', g0, 1, { op: 'set', value: { n: 1 } });
  const cas = v.beginCas('kept', 1);
  v.failed('kept', cas);
  const plain = v.beginPlain('later', { op: 'set', value: { n: 2 } });
  v.failed('later', plain);
  v.fromWatch('kept', 1, 'PUT', { n: 1 }, true); // late, and older than the CAS's base
  assert.equal(v.isLatest('kept', cas), true, 'still retried');
  assert.deepEqual(superseded, []);
  v.fromWatch('later', 2, 'PUT', { n: 9 }, true); // another hub wrote it after our write was issued
  assert.equal(v.isLatest('later', plain), false);
  assert.deepEqual(v.get('later'), { n: 9 }, 'the view shows the bucket, not the dropped write');
  v.fromWatch('kept', 3, 'PUT', { n: 3 }, true);
  assert.equal(v.isLatest('kept', cas), false);
  assert.deepEqual(superseded, [['later', 2], ['kept', 3]]);
});

test('a newer write of a key makes older ones not the latest; a CAS ack replaces an older optimistic value', () => {
  const { v } = view();
  const g1 = v.beginPlain('k', { op: 'set', value: { n: 1 } });
  const g2 = v.beginCas('k', 0);
  assert.equal(v.isLatest('k', g1), false);
  assert.deepEqual(v.get('k'), { n: 1 }, 'the CAS is not shown before its ack');
  v.acked('k', g2, 3, { op: 'set', value: { n: 2 } });
  assert.deepEqual(v.entry('k'), { value: { n: 2 }, revision: 3 });
  v.acked('k', g1, 2, { op: 'set', value: { n: 1 } }); // the older write's ack, after
  assert.deepEqual(v.entry('k'), { value: { n: 2 }, revision: 3 });
});

test('a compare-and-swap acknowledged below the watch\'s position (its replica numbers the stream otherwise) still shows; the leader\'s record can be adopted', () => {
  const { v, changes } = view();
  // The watch runs on a replica whose numbering is ahead of the leader's.
  v.fromWatch('other', 120, 'PUT', { n: 0 }, true);
  v.fromWatch('k', 110, 'PUT', { n: 1 }, true);
  const gen = v.beginCas('k', 110);
  v.acked('k', gen, 100, { op: 'set', value: { n: 2 } }); // the leader's revision, below the watch's 120
  assert.deepEqual(v.entry('k'), { value: { n: 2 }, revision: 100 }, 'the write shows (before: the view kept n: 1 until the watch delivered it, or forever if a replaced watch skipped it)');
  // A create acknowledged below the position shows too.
  const g2 = v.beginCas('new', 0);
  v.acked('new', g2, 101, { op: 'set', value: { n: 3 } });
  assert.deepEqual(v.entry('new'), { value: { n: 3 }, revision: 101 });
  // A plain ack at or below the position is still left to the watch (it delivers in order).
  const g3 = v.beginCas('k', 99); // not the revision the view holds
  v.acked('k', g3, 102, { op: 'set', value: { n: 9 } });
  assert.deepEqual(v.get('k'), { n: 2 });
  // adopt: the leader's record replaces the view's, whatever the revisions; a change only when the content differs.
  const before = changes.length;
  assert.equal(v.adopt('k', v.basis('k'), { revision: 90, kind: 'PUT', raw: { n: 2 }, parsed: true }), true);
  assert.deepEqual(v.entry('k'), { value: { n: 2 }, revision: 90 });
  assert.equal(changes.length, before, 'same content: no change reported');
  v.adopt('k', v.basis('k'), { revision: 95, kind: 'PUT', raw: { n: 5 }, parsed: true });
  assert.deepEqual(changes.at(-1), { op: 'set', key: 'k', value: { n: 5 }, revision: 95 });
  v.adopt('k', v.basis('k'), { revision: 96, kind: 'DEL', raw: undefined, parsed: false });
  assert.equal(v.get('k'), undefined);
  assert.deepEqual(changes.at(-1), { op: 'delete', key: 'k', revision: 96 });
});

test('the leader\'s answer is not adopted when the watch changed the key while it was on its way (it may be older)', () => {
  const { v, changes } = view();
  // n: 1 is hub a's running record, n: 2 the winner's fence post (P), n: 3 its content (C).
  // Hub a's write lost; it asks the leader. The leader answers with the winner's first write
  // (the fence post, P); meanwhile the watch delivered P and then the winner's content (C).
  v.fromWatch('job', 10, 'PUT', { n: 1 }, true);
  const basis = v.basis('job');
  v.fromWatch('job', 11, 'PUT', { n: 2 }, true);
  v.fromWatch('job', 12, 'PUT', { n: 3 }, true);
  const seen = changes.length;
  assert.equal(v.adopt('job', basis, { revision: 11, kind: 'PUT', raw: { n: 2 }, parsed: true }), false);
  assert.deepEqual(v.entry('job'), { value: { n: 3 }, revision: 12 }, 'before: stuck on the fence post, the watch already past C');
  assert.equal(changes.length, seen, 'nobody hears of a step back');
  assert.equal(v.adopt('job', basis, { revision: 11, kind: 'DEL', raw: undefined, parsed: false }), false, 'nor of a deletion');
  assert.equal(v.get('job') !== undefined, true);
  // Unchanged since the lookup: the leader's record is taken.
  assert.equal(v.adopt('job', v.basis('job'), { revision: 13, kind: 'PUT', raw: { n: 4 }, parsed: true }), true);
  assert.deepEqual(v.get('job'), { n: 4 });
});

test('a reload (a replacement watch) reconciles by content: changed and vanished keys are reported once, unchanged keys are silent, this hub\'s unfinished writes stay', () => {
  const { v, changes, refused } = view();
  // The old watch ran on a replica numbering the stream ~1000 above the others.
  v.fromWatch('same', 1001, 'PUT', { n: 1 }, true);
  v.fromWatch('changed', 1002, 'PUT', { n: 2 }, true);
  v.fromWatch('gone', 1003, 'PUT', { n: 3 }, true);
  v.fromWatch('deleted', 1004, 'PUT', { n: 4 }, true);
  v.fromWatch('spoilt', 1005, 'PUT', { n: 5 }, true);
  const mine = v.beginPlain('mine', { op: 'set', value: { n: 6 } }); // in flight
  const failedCas = v.beginCas('same', 1001);
  v.failed('same', failedCas);
  changes.length = 0;
  v.beginReload();
  assert.equal(v.watchPosition, 0, 'the position restarts in the new watch\'s numbering');
  // The new watch, on a replica numbered lower: the bucket's last value per key, then one live change.
  v.fromWatch('same', 2, 'PUT', { n: 1 }, true);
  v.fromWatch('changed', 3, 'PUT', { n: 20 }, true); // another hub changed it: below 1002, yet newer
  v.fromWatch('deleted', 4, 'DEL', undefined, false);
  v.fromWatch('spoilt', 5, 'PUT', { bad: true }, true);
  v.fromWatch('new', 6, 'PUT', { n: 7 }, true);
  v.fromWatch('changed', 7, 'PUT', { n: 21 }, true); // live, before the watch said "nothing pending"
  assert.equal(v.isReloading, true);
  v.endReload();
  assert.equal(v.isReloading, false);
  assert.deepEqual(changes, [
    { op: 'set', key: 'changed', value: { n: 20 }, revision: 3 },
    { op: 'delete', key: 'deleted', revision: 4 },
    { op: 'delete', key: 'spoilt', revision: 5 },
    { op: 'set', key: 'new', value: { n: 7 }, revision: 6 },
    { op: 'set', key: 'changed', value: { n: 21 }, revision: 7 },
    { op: 'delete', key: 'gone', revision: 7 },
  ], 'each change once; "same" is silent (before: revisions below the view\'s were ignored, so "changed" stayed at n: 2)');
  assert.deepEqual(refused, ['spoilt']);
  assert.deepEqual(v.entry('same'), { value: { n: 1 }, revision: 2 }, 'unchanged content takes the new numbering');
  assert.deepEqual(v.get('changed'), { n: 21 });
  assert.equal(v.has('gone'), false);
  assert.deepEqual(v.get('mine'), { n: 6 }, 'a pending write still shows');
  assert.equal(v.isLatest('mine', mine), true);
  assert.equal(v.isLatest('same', failedCas), true, 'a failed write is left as it is');
  // After the reload, live entries follow by revision again, in the new numbering.
  v.fromWatch('same', 8, 'PUT', { n: 8 }, true);
  assert.deepEqual(v.entry('same'), { value: { n: 8 }, revision: 8 });
  v.fromWatch('same', 3, 'PUT', { n: 0 }, true); // an older entry does not roll it back
  assert.deepEqual(v.get('same'), { n: 8 });
});

test('a reload that is replaced before it caught up starts over; an empty bucket empties the view', () => {
  const { v, changes } = view();
  v.fromWatch('a', 10, 'PUT', { n: 1 }, true);
  v.fromWatch('b', 11, 'PUT', { n: 2 }, true);
  v.beginReload();
  v.fromWatch('a', 1, 'PUT', { n: 1 }, true);
  v.beginReload(); // that watch died mid-way: a new one
  changes.length = 0;
  v.endReload(); // the bucket (as the new watch sees it) holds nothing
  assert.deepEqual(changes.map((c) => [c.op, c.key]), [['delete', 'a'], ['delete', 'b']]);
  assert.equal(v.size, 0);
  v.endReload(); // twice: nothing more
  assert.equal(changes.length, 2);
});

test('a reload reports this hub\'s own acknowledged writes the dead watch never delivered (watchers hear of every change, ours too)', () => {
  const { v, changes } = view();
  v.fromWatch('heard', 1, 'PUT', { n: 1 }, true);
  v.fromWatch('gone', 2, 'PUT', { n: 2 }, true);
  const g1 = v.beginPlain('heard', { op: 'set', value: { n: 1 } }); // same content, re-written: watched
  v.acked('heard', g1, 3, { op: 'set', value: { n: 1 } });
  v.fromWatch('heard', 3, 'PUT', { n: 1 }, true);
  // The watch dies; this hub's writes are acknowledged meanwhile.
  const g2 = v.beginPlain('mine', { op: 'set', value: { n: 4 } });
  v.acked('mine', g2, 4, { op: 'set', value: { n: 4 } });
  const g3 = v.beginPlain('gone', { op: 'delete' });
  v.acked('gone', g3, 5, { op: 'delete' });
  changes.length = 0;
  v.beginReload();
  v.fromWatch('heard', 3, 'PUT', { n: 1 }, true);
  v.fromWatch('mine', 4, 'PUT', { n: 4 }, true);
  v.fromWatch('gone', 5, 'DEL', undefined, false);
  v.endReload();
  assert.deepEqual(changes, [
    { op: 'set', key: 'mine', value: { n: 4 }, revision: 4 },
    { op: 'delete', key: 'gone', revision: 5 },
  ], 'the view already held them, yet nobody had heard; "heard" stays silent');
});

test('this hub\'s acknowledged writes the watch passes without delivering (replaced before it got there) are reported, in revision order, before the entry that passed them', () => {
  const { v, changes } = view();
  const g1 = v.beginPlain('x', { op: 'set', value: { n: 1 } });
  v.acked('x', g1, 1, { op: 'set', value: { n: 1 } });
  const g2 = v.beginPlain('y', { op: 'set', value: { n: 2 } });
  v.acked('y', g2, 2, { op: 'set', value: { n: 2 } });
  const g3 = v.beginPlain('x', { op: 'delete' });
  v.acked('x', g3, 3, { op: 'delete' });
  // The bucket keeps one revision per key: x@1 was gone when the watch's consumer got there.
  v.fromWatch('y', 2, 'PUT', { n: 2 }, true);
  v.fromWatch('x', 3, 'DEL', undefined, false);
  assert.deepEqual(changes, [
    { op: 'set', key: 'x', value: { n: 1 }, revision: 1 },
    { op: 'set', key: 'y', value: { n: 2 }, revision: 2 },
    { op: 'delete', key: 'x', revision: 3 },
  ]);
  assert.equal(v.has('x'), false);
  assert.deepEqual(v.entry('y'), { value: { n: 2 }, revision: 2 });
  // Passed by an entry of a key no hub wrote: reported too, once.
  const g4 = v.beginPlain('z', { op: 'set', value: { n: 4 } });
  v.acked('z', g4, 4, { op: 'set', value: { n: 4 } });
  v.passed(5);
  v.fromWatch('z', 6, 'PUT', { n: 5 }, true); // another hub, later
  assert.deepEqual(changes.slice(3), [
    { op: 'set', key: 'z', value: { n: 4 }, revision: 4 },
    { op: 'set', key: 'z', value: { n: 5 }, revision: 6 },
  ]);
});

test('an acknowledged write the watch delivered, or delivered before its ack came, is reported once; a reload drops the ones it covered', () => {
  const { v, changes } = view();
  v.fromWatch('a', 1, 'PUT', { n: 1 }, true); // delivered before its ack
  const g1 = v.beginPlain('a', { op: 'set', value: { n: 1 } });
  v.acked('a', g1, 1, { op: 'set', value: { n: 1 } });
  const g2 = v.beginPlain('b', { op: 'set', value: { n: 2 } });
  v.acked('b', g2, 2, { op: 'set', value: { n: 2 } });
  v.fromWatch('b', 2, 'PUT', { n: 2 }, true);
  v.fromWatch('c', 3, 'PUT', { n: 3 }, true);
  assert.deepEqual(changes.map((c) => [c.key, c.revision]), [['a', 1], ['b', 2], ['c', 3]]);
  // Acked while the watch is dead; the replacement reloads: by content, once.
  const g3 = v.beginPlain('d', { op: 'set', value: { n: 4 } });
  v.acked('d', g3, 4, { op: 'set', value: { n: 4 } });
  const g4 = v.beginPlain('d', { op: 'set', value: { n: 5 } });
  v.acked('d', g4, 5, { op: 'set', value: { n: 5 } });
  changes.length = 0;
  v.beginReload();
  v.fromWatch('a', 1, 'PUT', { n: 1 }, true);
  v.fromWatch('b', 2, 'PUT', { n: 2 }, true);
  v.fromWatch('c', 3, 'PUT', { n: 3 }, true);
  v.fromWatch('d', 5, 'PUT', { n: 5 }, true);
  v.endReload();
  v.fromWatch('e', 6, 'PUT', { n: 6 }, true);
  assert.deepEqual(changes.map((c) => [c.key, c.revision]), [['d', 5], ['e', 6]]);
});

test('correct(): the leader\'s later record replaces the reload\'s stale one under the view\'s revision; the watch\'s later entries still apply', () => {
  const { v, changes } = view();
  // A reload from a replica that missed writes: it loads n: 1 where the leader holds n: 2.
  v.beginReload();
  v.fromWatch('job', 40, 'PUT', { n: 1 }, true);
  v.endReload();
  const basis = v.basis('job')!;
  const seen = changes.length;
  assert.equal(v.correct('job', basis, { n: 2 }), true);
  assert.deepEqual(v.entry('job'), { value: { n: 2 }, revision: 40 }, 'the leader\'s content, the watch\'s revision');
  assert.deepEqual(changes.slice(seen), [{ op: 'set', key: 'job', value: { n: 2 }, revision: 40 }], 'watchers hear the change');
  // The watch's next entry of the key (live, from the leader's log) is in the watch's numbering: it applies.
  v.fromWatch('job', 41, 'PUT', { n: 3 }, true);
  assert.deepEqual(v.entry('job'), { value: { n: 3 }, revision: 41 });
  // A compare-and-swap on the corrected record expects the view's revision (the leader refuses it, kv-rebase.ts re-bases it).
  assert.equal(v.correct('job', v.basis('job')!, { n: 4 }), true);
  const gen = v.beginCas('job', 41);
  v.acked('job', gen, 30, { op: 'set', value: { n: 5 } });
  assert.deepEqual(v.entry('job'), { value: { n: 5 }, revision: 30 });
});

test('correct(): kept out when the watch changed the key during the lookup, and for a record the guard refuses', () => {
  const { v, changes } = view();
  v.fromWatch('job', 40, 'PUT', { n: 1 }, true);
  const basis = v.basis('job')!;
  v.fromWatch('job', 41, 'PUT', { n: 3 }, true); // the watch moved on while the answer was on its way
  const seen = changes.length;
  assert.equal(v.correct('job', basis, { n: 2 }), false);
  assert.deepEqual(v.entry('job'), { value: { n: 3 }, revision: 41 }, 'the watch\'s record stays');
  assert.equal(v.correct('job', v.basis('job')!, { bad: true }), false);
  assert.deepEqual(v.get('job'), { n: 3 });
  assert.equal(changes.length, seen, 'nobody hears of either');
});

test('an acknowledged outcome the bucket brings back in an earlier state (a diverged replica leads): kept, at the bucket\'s revision, and reported for a write back; watchers hear nothing', () => {
  const { v, changes, regressed } = view(PROGRESS);
  v.fromWatch('job', 3, 'PUT', { n: 2 }, true);
  v.fromWatch('job', 5, 'PUT', { n: 10 }, true);
  v.fromWatch('open', 4, 'PUT', { n: 1 }, true);
  changes.length = 0;
  // A reload on the replica that lost revision 5: its last record of the job is the running one, renumbered.
  v.beginReload();
  v.fromWatch('job', 4, 'PUT', { n: 2 }, true);
  v.fromWatch('open', 3, 'PUT', { n: 0 }, true); // not an outcome: taken as the bucket says (kv-verify checks it)
  v.endReload();
  assert.deepEqual(v.entry('job'), { value: { n: 10 }, revision: 4 });
  assert.deepEqual(regressed, [['job', 10, 4, 2]]);
  assert.deepEqual(changes.map((c) => c.key), ['open']);
  // The leader's record, met after a refused write back, is another sighting under its own numbering.
  assert.equal(v.adopt('job', v.entry('job'), { revision: 9, kind: 'PUT', raw: { n: 2 }, parsed: true }), true);
  assert.deepEqual(v.entry('job'), { value: { n: 10 }, revision: 9 });
  assert.deepEqual(regressed.at(-1), ['job', 10, 9, 2]);
  // The write back lands: the watch brings the outcome again, and it is an ordinary change.
  v.fromWatch('job', 12, 'PUT', { n: 10 }, true);
  assert.deepEqual(v.entry('job'), { value: { n: 10 }, revision: 12 });
  assert.equal(regressed.length, 2);
});

test('a live entry older than the acknowledged outcome is late, not lost; without progress nothing is kept', () => {
  const { v, regressed } = view(PROGRESS);
  const gen = v.beginPlain('job', { op: 'set', value: { n: 10 } });
  v.acked('job', gen, 8, { op: 'set', value: { n: 10 } });
  v.fromWatch('job', 6, 'PUT', { n: 2 }, true); // the running record, delivered after the end's ack
  assert.deepEqual(v.entry('job'), { value: { n: 10 }, revision: 8 });
  // A watch on a replica that numbers the stream otherwise: its running record can carry a higher revision than the
  // leader's ack of the end. Until the watch delivered the end itself, that is the write before it, late.
  v.fromWatch('job', 9, 'PUT', { n: 2 }, true);
  assert.deepEqual(regressed, []);
  v.fromWatch('job', 10, 'PUT', { n: 10 }, true); // the end, as the watch numbers it
  v.fromWatch('job', 11, 'PUT', { n: 2 }, true); // after it: the bucket went back
  assert.deepEqual(v.entry('job'), { value: { n: 10 }, revision: 11 });
  assert.deepEqual(regressed, [['job', 10, 11, 2]]);

  const plain = view();
  plain.v.fromWatch('job', 5, 'PUT', { n: 10 }, true);
  plain.v.beginReload();
  plain.v.fromWatch('job', 4, 'PUT', { n: 2 }, true);
  plain.v.endReload();
  assert.deepEqual(plain.v.entry('job'), { value: { n: 2 }, revision: 4 });
  assert.deepEqual(plain.regressed, []);
});

test('a later state from the watch is taken even below the view\'s revision (the view\'s came from the leader\'s numbering); an earlier one is not', () => {
  const { v, changes } = view(PROGRESS);
  v.fromWatch('job', 20, 'PUT', { n: 1 }, true);
  // A refused write re-based at the leader: the view takes the leader's record at the leader's revision (far above the watch's numbering).
  assert.equal(v.adopt('job', v.entry('job'), { revision: 90, kind: 'PUT', raw: { n: 2 }, parsed: true }), true);
  v.fromWatch('job', 25, 'PUT', { n: 1 }, true); // late, and not later: ignored as before
  assert.deepEqual(v.entry('job'), { value: { n: 2 }, revision: 90 });
  v.fromWatch('job', 30, 'PUT', { n: 10 }, true); // another hub's end of the job, as the watch numbers it
  assert.deepEqual(v.entry('job'), { value: { n: 10 }, revision: 30 });
  assert.deepEqual(changes.at(-1), { op: 'set', key: 'job', value: { n: 10 }, revision: 30 });
  v.fromWatch('job', 31, 'PUT', { n: 10 }, true); // the watch's next entries apply in its numbering again
  assert.deepEqual(v.entry('job'), { value: { n: 10 }, revision: 31 });
});
