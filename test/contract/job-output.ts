// The contract every JobOutputStore passes (hub/store/types.ts), on the same
// harness as the keyed stores (keyed-store.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobOutputStore, StateBackend } from '../../hub/store/types.js';
import type { Harness } from './keyed-store.js';

async function withOutput(h: Harness, body: (o: JobOutputStore, reopen: () => Promise<{ o: JobOutputStore; b: StateBackend }>) => Promise<void>): Promise<void> {
  const c = await h.fresh();
  const opened: StateBackend[] = [];
  try {
    const b = await c.open();
    opened.push(b);
    const o = await b.openOutput();
    await body(o, async () => {
      const b2 = await c.open();
      opened.push(b2);
      return { o: await b2.openOutput(), b: b2 };
    });
  } finally {
    for (const b of opened) await b.close().catch(() => undefined);
    await c.cleanup();
  }
}

export function jobOutputContract(h: Harness): void {
  const t = (name: string, fn: () => Promise<void>): void => { test(`${h.name} job output: ${name}`, fn); };

  t('append numbers lines 1, 2, 3 per job; read returns them in order, after a seq, within a byte budget', () => withOutput(h, async (o) => {
    assert.equal(o.append('job-aaaaaaaa', 'stdout', 'one').seq, 1);
    assert.equal(o.append('job-bbbbbbbb', 'stdout', 'other job').seq, 1);
    assert.equal(o.append('job-aaaaaaaa', 'stderr', 'two').seq, 2);
    assert.equal(o.append('job-aaaaaaaa', 'stdout', 'three').seq, 3);
    await o.end('job-aaaaaaaa');
    assert.deepEqual((await o.read('job-aaaaaaaa')).map(({ seq, stream, data }) => ({ seq, stream, data })), [
      { seq: 1, stream: 'stdout', data: 'one' }, { seq: 2, stream: 'stderr', data: 'two' }, { seq: 3, stream: 'stdout', data: 'three' },
    ]);
    assert.deepEqual((await o.read('job-aaaaaaaa', { afterSeq: 2 })).map((l) => l.seq), [3]);
    assert.deepEqual((await o.read('job-aaaaaaaa', { limitBytes: 7 })).map((l) => l.data), ['one', 'two']);
    assert.deepEqual(await o.read('job-unknown0'), []);
  }));

  t('lines read while the job still runs, then after it ended and the store reopened', () => withOutput(h, async (o, reopen) => {
    for (let i = 1; i <= 100; i += 1) o.append('job-cccccccc', 'stdout', `line ${i} ${'x'.repeat(i % 7)}`);
    const live = await o.read('job-cccccccc');
    assert.equal(live.length, 100, 'buffered lines are readable before end()');
    await o.end('job-cccccccc');
    await o.close();
    const { o: o2 } = await reopen();
    const back = await o2.read('job-cccccccc');
    assert.deepEqual(back.map((l) => l.seq), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.equal(back[41]!.data, `line 42 ${'x'.repeat(42 % 7)}`);
  }));

  t('data with newlines, unicode and a leading "! " survives as one line', () => withOutput(h, async (o) => {
    const tricky = ['! not stderr', 'tab\there', 'ünïcødé ✓', 'a\nb', ''];
    for (const d of tricky) o.append('job-dddddddd', 'stdout', d);
    await o.end('job-dddddddd');
    assert.deepEqual((await o.read('job-dddddddd')).map((l) => [l.stream, l.data]), tricky.map((d) => ['stdout', d]));
  }));

  t('resume: a store that takes over a running job continues its seq where the stored lines end', () => withOutput(h, async (o, reopen) => {
    for (let i = 1; i <= 3; i += 1) o.append('job-gggggggg', 'stdout', `before ${i}`);
    await o.end('job-gggggggg');
    await o.close();
    // The job's host moved: another hub (a shared backend) or this hub after a restart writes on.
    const { o: o2 } = await reopen();
    await o2.resume('job-gggggggg');
    assert.equal(o2.append('job-gggggggg', 'stderr', 'after 1').seq, 4);
    assert.equal(o2.append('job-gggggggg', 'stdout', 'after 2').seq, 5);
    await o2.end('job-gggggggg');
    assert.deepEqual((await o2.read('job-gggggggg')).map((l) => `${l.seq} ${l.data}`), ['1 before 1', '2 before 2', '3 before 3', '4 after 1', '5 after 2']);
    await o2.resume('job-unknown1'); // nothing stored: nothing to do
    assert.equal(o2.append('job-unknown1', 'stdout', 'x').seq, 1);
  }));

  t('every line keeps the time append() stored it (ms since the epoch) and its stream, the agent\'s notes included, across a reopen', () => withOutput(h, async (o, reopen) => {
    const before = Date.now();
    const a = o.append('job-ffffffff', 'stdout', 'out');
    const b = o.append('job-ffffffff', 'note', 'bento: rollback guard: recorded /nix/store/x');
    await new Promise((r) => setTimeout(r, 15));
    const c = o.append('job-ffffffff', 'stderr', 'err');
    const after = Date.now();
    for (const r of [a, b, c]) assert.ok(Number.isSafeInteger(r.ts) && r.ts >= before && r.ts <= after, `ts ${r.ts} within [${before}, ${after}]`);
    assert.ok(c.ts >= b.ts + 10 && b.ts >= a.ts, 'times follow the appends');
    await o.end('job-ffffffff');
    const expected = [
      { seq: 1, stream: 'stdout', data: 'out', ts: a.ts },
      { seq: 2, stream: 'note', data: 'bento: rollback guard: recorded /nix/store/x', ts: b.ts },
      { seq: 3, stream: 'stderr', data: 'err', ts: c.ts },
    ];
    assert.deepEqual(await o.read('job-ffffffff'), expected, 'read gives what append returned');
    await o.close();
    const { o: o2 } = await reopen();
    assert.deepEqual(await o2.read('job-ffffffff'), expected, 'and so does a reopened store');
  }));

  t('a line appended with the time it came (at) keeps that time, across a reopen', () => withOutput(h, async (o, reopen) => {
    const earlier = Date.now() - 60_000;
    const a = o.append('job-fffffffe', 'stdout', 'held', earlier);
    const b = o.append('job-fffffffe', 'stderr', 'now');
    assert.equal(a.ts, earlier, 'append returns the time it was given');
    assert.ok(b.ts >= earlier + 60_000, 'without one: now');
    await o.end('job-fffffffe');
    const expected = [{ seq: 1, stream: 'stdout', data: 'held', ts: earlier }, { seq: 2, stream: 'stderr', data: 'now', ts: b.ts }];
    assert.deepEqual(await o.read('job-fffffffe'), expected);
    await o.close();
    const { o: o2 } = await reopen();
    assert.deepEqual(await o2.read('job-fffffffe'), expected, 'and so does a reopened store');
  }));

  t('remove forgets a job\'s output', () => withOutput(h, async (o) => {
    o.append('job-eeeeeeee', 'stdout', 'gone soon');
    await o.end('job-eeeeeeee');
    await o.remove('job-eeeeeeee');
    assert.deepEqual(await o.read('job-eeeeeeee'), []);
    await o.remove('job-eeeeeeee');
  }));
}
