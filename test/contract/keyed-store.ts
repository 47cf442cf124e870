// The contract every KeyedStore implementation passes (hub/store/types.ts).
// Each backend's test file calls keyedStoreContract() with a harness that
// opens its backend over fresh backing state; the numbered guarantees in
// types.ts are what each test checks. A backend that several hubs share (the
// cluster) also gives `peer`, a second opener on the same state at the same
// time, and runs the cross-hub tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyedStore, StateBackend } from '../../hub/store/types.js';
import { BentoError } from '../../common/protocol/errors.js';
import { waitFor } from '../helpers/proc.js';

export interface BackendCase {
  /** A backend over this case's backing state (fresh the first time). */
  open(): Promise<StateBackend>;
  /** Another hub's backend on the same state at the same time; absent for single-writer backends. */
  peer?: () => Promise<StateBackend>;
  cleanup(): Promise<void>;
}

export interface Harness {
  name: string;
  /** Several hubs open it at once (the cluster): run the cross-hub tests, and fresh() must give peer(). */
  shared: boolean;
  fresh(): Promise<BackendCase>;
}

interface Rec { n: number; tag?: string }
const isRec = (_k: string, v: unknown): v is Rec => typeof (v as Rec | null)?.n === 'number';
const anything = (_k: string, _v: unknown): _v is Rec => true;

async function withStore(h: Harness, body: (s: KeyedStore<Rec>, c: BackendCase) => Promise<void>): Promise<void> {
  const c = await h.fresh();
  const b = await c.open();
  try {
    const s = await b.openKeyed<Rec>('contract', { accept: isRec });
    await body(s, c);
    await s.close();
  } finally {
    await b.close();
    await c.cleanup();
  }
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof BentoError && err.code === code);
}

export function keyedStoreContract(h: Harness): void {
  const t = (name: string, fn: () => Promise<void>): void => { test(`${h.name} keyed store: ${name}`, fn); };

  t('a set is visible at once and resolves with a revision; revisions increase (1, 2, 4)', () => withStore(h, async (s) => {
    assert.equal(s.get('a'), undefined);
    assert.equal(s.entry('a'), undefined);
    const p = s.set('a', { n: 1 });
    assert.deepEqual(s.get('a'), { n: 1 }, 'visible before the write is durable');
    const r1 = await p;
    assert.ok(r1 > 0);
    const r2 = await s.set('b', { n: 2 });
    const r3 = await s.set('a', { n: 3 });
    assert.ok(r2 > r1 && r3 > r2, `revisions ${r1}, ${r2}, ${r3}`);
    assert.deepEqual(s.entry('a'), { value: { n: 3 }, revision: r3 });
    assert.equal(s.has('b'), true);
    assert.equal(s.size, 2);
    assert.deepEqual([...s.keys()].sort(), ['a', 'b']);
    assert.deepEqual([...s.values()].map((v) => v.n).sort(), [2, 3]);
    await s.delete('b');
    await s.delete('never-there');
    assert.equal(s.has('b'), false);
    assert.equal(s.size, 1);
  }));

  t('compare-and-swap: a stale or wrong revision changes nothing (2, 3, 4)', () => withStore(h, async (s) => {
    const r1 = await s.set('k', { n: 1 }, { expectRevision: 0 });
    await rejectsWith(s.set('k', { n: 9 }, { expectRevision: 0 }), 'STATE_CONFLICT');
    assert.deepEqual(s.entry('k'), { value: { n: 1 }, revision: r1 });
    const r2 = await s.set('k', { n: 2 }, { expectRevision: r1 });
    assert.ok(r2 > r1);
    await rejectsWith(s.set('k', { n: 9 }, { expectRevision: r1 }), 'STATE_CONFLICT');
    await rejectsWith(s.delete('k', { expectRevision: r1 }), 'STATE_CONFLICT');
    assert.deepEqual(s.get('k'), { n: 2 });
    await s.delete('k', { expectRevision: r2 });
    assert.equal(s.has('k'), false);
    await rejectsWith(s.set('gone', { n: 1 }, { expectRevision: 5 }), 'STATE_CONFLICT');
    assert.equal(s.has('gone'), false);
  }));

  t('latest() answers the record the store holds: a resolved write with its revision, nothing for an absent or deleted key', () => withStore(h, async (s) => {
    assert.equal(await s.latest('a'), undefined);
    const r1 = await s.set('a', { n: 1 });
    assert.deepEqual(await s.latest('a'), { value: { n: 1 }, revision: r1 });
    const r2 = await s.set('a', { n: 2 }, { expectRevision: r1 });
    assert.deepEqual(await s.latest('a'), { value: { n: 2 }, revision: r2 });
    await s.set('b', { n: 3 });
    await s.delete('b');
    assert.equal(await s.latest('b'), undefined);
  }));

  t('an eventual write (WriteOptions.eventually) is visible at once, resolves once durable, and a newer change of its key wins; all survive a reopen', async () => {
    const c = await h.fresh();
    try {
      const b = await c.open();
      const s = await b.openKeyed<Rec>('contract', { accept: isRec });
      const e1 = s.set('e', { n: 1 }, { eventually: true });
      assert.deepEqual(s.get('e'), { n: 1 }, 'visible before the write is durable');
      const e2 = s.set('e', { n: 2 }, { eventually: true });
      const r1 = await e1;
      const r2 = await e2;
      assert.ok(r1 > 0 && r2 > r1, `revisions ${r1}, ${r2}`);
      // Eventual then plain on one key: the plain one, newer, is what stays.
      const f1 = s.set('f', { n: 1 }, { eventually: true });
      const rf = await s.set('f', { n: 2 });
      await f1;
      const gone = s.set('g', { n: 1 });
      await s.delete('g', { eventually: true });
      await gone;
      // Alone and never followed by another write: still durable (the store does not wait forever).
      const rh = await s.set('h', { n: 7 }, { eventually: true });
      await s.close();
      await b.close();
      const b2 = await c.open();
      const s2 = await b2.openKeyed<Rec>('contract', { accept: isRec });
      assert.deepEqual(s2.entry('e'), { value: { n: 2 }, revision: r2 });
      assert.deepEqual(s2.entry('f'), { value: { n: 2 }, revision: rf });
      assert.equal(s2.has('g'), false);
      assert.deepEqual(s2.entry('h'), { value: { n: 7 }, revision: rh });
      await s2.close();
      await b2.close();
    } finally {
      await c.cleanup();
    }
  });

  t('what resolved survives a reopen with its revision; revisions keep increasing after it (5)', async () => {
    const c = await h.fresh();
    try {
      const b = await c.open();
      const s = await b.openKeyed<Rec>('contract', { accept: isRec });
      // Many writes in one turn: each resolves once durable (group commit or not).
      await Promise.all(Array.from({ length: 500 }, (_, i) => s.set(`k${i}`, { n: i })));
      await s.delete('k7');
      const r8 = await s.set('k8', { n: -8 });
      await s.close();
      await b.close();
      const b2 = await c.open();
      const s2 = await b2.openKeyed<Rec>('contract', { accept: isRec });
      assert.equal(s2.size, 499);
      assert.equal(s2.has('k7'), false);
      assert.deepEqual(s2.entry('k8'), { value: { n: -8 }, revision: r8 });
      const r9 = await s2.set('k9', { n: 9 });
      assert.ok(r9 > r8, `revision after reopen ${r9} > ${r8}`);
      await s2.close();
      await b2.close();
    } finally {
      await c.cleanup();
    }
  });

  t('records that fail the accept check are dropped on the way in, never handed out (7)', async () => {
    const c = await h.fresh();
    try {
      const b = await c.open();
      const loose = await b.openKeyed<Rec>('contract', { accept: anything });
      await loose.set('good', { n: 1 });
      await loose.set('bad', { nope: true } as unknown as Rec);
      await loose.close();
      await b.close();
      const b2 = await c.open();
      const strict = await b2.openKeyed<Rec>('contract', { accept: isRec });
      assert.deepEqual([...strict.keys()], ['good']);
      assert.equal(strict.get('bad'), undefined);
      assert.equal(await strict.latest('bad'), undefined);
      assert.deepEqual((await strict.latest('good'))?.value, { n: 1 });
      await strict.close();
      await b2.close();
    } finally {
      await c.cleanup();
    }
  });

  t('watch reports every change in revision order, own ones included; a throwing watcher is isolated (6)', () => withStore(h, async (s) => {
    const seen: Array<[string, string, number]> = [];
    const stopBad = s.watch(() => { throw new Error('watcher bug'); });
    const stop = s.watch((c) => { seen.push([c.op, c.key, c.revision]); });
    const r1 = await s.set('x', { n: 1 });
    const r2 = await s.set('y', { n: 2 });
    await s.delete('x');
    await waitFor('three changes', () => seen.length >= 3 || null, 5000);
    assert.deepEqual(seen.slice(0, 2), [['set', 'x', r1], ['set', 'y', r2]]);
    assert.equal(seen[2]![0], 'delete');
    assert.ok(seen[2]![2] > r2);
    stop();
    stopBad();
    await s.set('z', { n: 3 });
    await s.settled();
    assert.equal(seen.length, 3, 'no change after unsubscribing');
  }));

  t('settled() waits for every write issued so far', () => withStore(h, async (s) => {
    let done = 0;
    for (let i = 0; i < 50; i += 1) void s.set(`k${i}`, { n: i }).then(() => { done += 1; });
    await s.settled();
    await new Promise((r) => setImmediate(r));
    assert.equal(done, 50);
  }));

  t('two named stores of one backend do not share keys', async () => {
    const c = await h.fresh();
    const b = await c.open();
    try {
      const jobs = await b.openKeyed<Rec>('jobs', { accept: isRec });
      const hosts = await b.openKeyed<Rec>('hosts', { accept: isRec });
      await jobs.set('same-key', { n: 1 });
      await hosts.set('same-key', { n: 2 });
      assert.deepEqual(jobs.get('same-key'), { n: 1 });
      assert.deepEqual(hosts.get('same-key'), { n: 2 });
      await jobs.delete('same-key');
      assert.deepEqual(hosts.get('same-key'), { n: 2 });
      await jobs.close();
      await hosts.close();
    } finally {
      await b.close();
      await c.cleanup();
    }
  });

  if (h.shared) {
    t('latest() shows another hub\'s acknowledged write at once, whether or not this hub\'s view has it yet', async () => {
      const c = await h.fresh();
      if (!c.peer) throw new Error(`${h.name}: a shared backend must provide peer()`);
      const a = await c.open();
      const b = await c.peer();
      try {
        const sa = await a.openKeyed<Rec>('contract', { accept: isRec });
        const sb = await b.openKeyed<Rec>('contract', { accept: isRec });
        for (let n = 1; n <= 5; n++) {
          const r = await sb.set('k', { n });
          assert.deepEqual(await sa.latest('k'), { value: { n }, revision: r }, `write ${n}`);
        }
        await sb.delete('k');
        assert.equal(await sa.latest('k'), undefined);
        await sa.close();
        await sb.close();
      } finally {
        await a.close();
        await b.close();
        await c.cleanup();
      }
    });

    t('a peer sees changes through its view, and exactly one of two racing CAS writes wins', async () => {
      const c = await h.fresh();
      if (!c.peer) throw new Error(`${h.name}: a shared backend must provide peer()`);
      const a = await c.open();
      const b = await c.peer();
      try {
        const sa = await a.openKeyed<Rec>('contract', { accept: isRec });
        const sb = await b.openKeyed<Rec>('contract', { accept: isRec });
        const r1 = await sa.set('host1', { n: 1 });
        await waitFor('peer view', () => sb.entry('host1')?.revision === r1 || null, 5000);
        const results = await Promise.allSettled([
          sa.set('host1', { n: 2, tag: 'a' }, { expectRevision: r1 }),
          sb.set('host1', { n: 2, tag: 'b' }, { expectRevision: r1 }),
        ]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one writer wins');
        const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(loser.reason instanceof BentoError && loser.reason.code === 'STATE_CONFLICT');
        const winner = results[0]!.status === 'fulfilled' ? 'a' : 'b';
        await waitFor('both views agree', () => (sa.get('host1')?.tag === winner && sb.get('host1')?.tag === winner) || null, 5000);
        await sa.close();
        await sb.close();
      } finally {
        await a.close();
        await b.close();
        await c.cleanup();
      }
    });
  }
}
