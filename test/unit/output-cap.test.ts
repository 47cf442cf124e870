// The cap on stored job output (hub/store/output-cap.ts in JobStore, issue 13
// part 4), on the file backend and real files: one job printing far more than
// its cap leaves a log of about the cap, with its head, a marker saying what
// was cut and its tail; every line keeps the seq it was given (live followers
// saw it) while running, after the end and after a reopen; a host's finished
// jobs together stay under their total, the oldest job's output dropped first
// and its record saying so; a hub stopped mid-job loses nothing it kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { openFileBackend } from '../../hub/store/file-backend.js';
import { JobStore, type JobRecord } from '../../hub/store/jobs.js';
import type { OutputLimits } from '../../hub/store/output-cap.js';
import { silentLogger } from '../../common/platform/log.js';
import { tmpDir } from '../helpers/proc.js';

const log = silentLogger();
const KiB = 1024;
const LIMITS: OutputLimits = { jobOutputBytes: 64 * KiB, jobOutputTailBytes: 16 * KiB, hostOutputBytes: 160 * KiB };

function job(id: string, host = 'web1'): JobRecord {
  return { id, host, action: 'switch', state: 'running', requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null };
}
const done = (rec: JobRecord): JobRecord => ({ ...rec, state: 'success', endedAt: new Date().toISOString(), exitCode: 0, durationMs: 1 });

async function open(stateDir: string): Promise<{ store: JobStore; close(): Promise<void> }> {
  const backend = openFileBackend({ stateDir, log });
  const store = await JobStore.open(backend, { history: 10, limits: LIMITS, log });
  return { store, close: async () => { await store.close(); await backend.close(); } };
}

/** 10,000 numbered lines of ~100 bytes: about 1.2 MB of output. */
function print(store: JobStore, id: string, from = 1, n = 10_000): number[] {
  const seqs: number[] = [];
  for (let i = from; i < from + n; i++) seqs.push(store.appendOutput(id, i % 10 === 0 ? 'stderr' : 'stdout', `line ${i} ${'x'.repeat(90)}`).seq);
  return seqs;
}

/** Head lines, then one marker, then the tail, all with the numbers they were printed with as their seqs. */
function checkShape(lines: Awaited<ReturnType<JobStore['readOutput']>>, total: number): { head: number; cut: number } {
  const marker = lines.findIndex((l) => l.trimmed);
  assert.ok(marker > 0, 'a marker after the head');
  assert.equal(lines.filter((l) => l.trimmed).length, 1);
  const m = lines[marker]!;
  for (const [i, l] of lines.entries()) {
    if (i === marker) continue;
    assert.equal(l.data, `line ${l.seq} ${'x'.repeat(90)}`, `seq ${l.seq} is the line printed as number ${l.seq}`);
    assert.equal(l.stream, l.seq % 10 === 0 ? 'stderr' : 'stdout');
  }
  assert.deepEqual(lines.slice(0, marker).map((l) => l.seq), Array.from({ length: marker }, (_, i) => i + 1), 'the head, from 1');
  const tail = lines.slice(marker + 1).map((l) => l.seq);
  assert.equal(tail.at(-1), total, 'the tail ends with the last line');
  assert.ok(tail.every((s, i) => i === 0 || s === tail[i - 1]! + 1), 'the tail has no gap');
  assert.equal(m.seq, tail[0]! - 1, 'the marker takes the seq of the last cut line');
  assert.equal(m.trimmed!.lines, tail[0]! - marker - 1, 'it counts every cut line');
  assert.match(m.data, new RegExp(`^bento: ${m.trimmed!.lines} lines \\(${m.trimmed!.bytes} bytes\\) of output cut here: the job printed more than its cap \\(limits\\.jobOutputBytes, 65536 bytes\\)`));
  return { head: marker, cut: m.trimmed!.lines };
}

test('a job printing 1.2 MB with a 64 KiB cap: head, marker, tail, seqs as given, while running, after its end and after a reopen', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    let { store, close } = await open(dir);
    const rec = job('job-cap00001');
    await store.save(rec);
    const seqs = print(store, rec.id);
    assert.deepEqual(seqs, Array.from({ length: 10_000 }, (_, i) => i + 1), 'append gives every line the next seq');
    // Running: the head from the store, the cut so far and the tail from memory.
    const live = await store.readOutput(rec.id);
    const shape = checkShape(live, 10_000);
    assert.ok(shape.cut > 9000, `cut ${shape.cut}`);
    // A reader who had up to some seq gets the rest, whether that seq is in the head, the cut or the tail.
    assert.deepEqual((await store.readOutput(rec.id, { afterSeq: 5 })).map((l) => l.seq).slice(0, 2), [6, 7]);
    assert.equal((await store.readOutput(rec.id, { afterSeq: shape.head + 5 }))[0]!.trimmed?.lines, shape.cut, 'inside the cut: the marker onwards');
    assert.deepEqual((await store.readOutput(rec.id, { afterSeq: 9998 })).map((l) => l.seq), [9999, 10_000]);

    await store.save(done(rec));
    const file = path.join(dir, 'jobs', `${rec.id}.log`);
    const size = (await stat(file)).size;
    assert.ok(size <= 64 * KiB + 1024, `the log is ${size} bytes`);
    assert.deepEqual(await store.readOutput(rec.id), live, 'the same lines and seqs once stored');
    const out = store.get(rec.id)!.output!;
    assert.equal(out.cuts?.length, 1);
    assert.equal(out.lines, live.length);
    assert.equal(store.outputStats.trimmedJobs, 1);
    assert.equal(store.outputStats.tailBytes, 0, 'nothing held once it ended');

    await close();
    ({ store, close } = await open(dir));
    assert.deepEqual(await store.readOutput(rec.id), live, 'and after a reopen');
    assert.equal((await store.readOutput(rec.id, { afterSeq: 9990 }))[0]!.seq, 9991);
    await close();
  } finally {
    await cleanup();
  }
});

test('a hub stopped mid-job stores the tail it held; the job goes on after the restart with seqs that continue', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    let { store, close } = await open(dir);
    const rec = job('job-cap00002');
    await store.save(rec);
    print(store, rec.id, 1, 5000);
    await close();
    ({ store, close } = await open(dir));
    const seqs = print(store, rec.id, 5001, 5000);
    assert.deepEqual([seqs[0], seqs.at(-1)], [5001, 10_000], 'seqs continue where the output stood');
    await store.save(done(rec));
    const lines = await store.readOutput(rec.id);
    const markers = lines.filter((l) => l.trimmed);
    assert.equal(markers.length, 2, 'one cut before the stop, one after');
    const order = lines.map((l) => l.seq);
    assert.ok(order.every((s, i) => i === 0 || s > order[i - 1]!), 'seqs strictly increase');
    assert.equal(lines.at(-1)!.seq, 10_000);
    for (const l of lines) if (!l.trimmed) assert.equal(l.data, `line ${l.seq} ${'x'.repeat(90)}`);
    const size = (await stat(path.join(dir, 'jobs', `${rec.id}.log`))).size;
    assert.ok(size <= 2 * 64 * KiB + 2048, `at most twice the cap across a restart: ${size}`);
    await close();
  } finally {
    await cleanup();
  }
});

test('a host\'s finished jobs stay under hostOutputBytes: the oldest job\'s output is dropped first, its record says so; other hosts are untouched', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const { store, close } = await open(dir);
    const other = job('job-other001', 'web2');
    await store.save(other);
    print(store, other.id, 1, 2000);
    await store.save(done(other));
    const ids = ['job-host0001', 'job-host0002', 'job-host0003'];
    for (const id of ids) {
      await store.save(job(id));
      print(store, id, 1, 2000);
      await store.save(done(job(id)));
    }
    // Each job stores ~64 KiB: three are over 160 KiB, so the first goes.
    assert.equal(store.get(ids[0]!)!.output?.dropped, true);
    assert.deepEqual(await store.readOutput(ids[0]!), []);
    for (const id of ids.slice(1)) assert.ok((await store.readOutput(id)).length > 0, `${id} kept`);
    assert.ok((await store.readOutput(other.id)).length > 0, 'another host\'s job is not touched');
    assert.equal(store.outputStats.droppedJobs, 1);
    assert.ok(store.outputStats.droppedBytes > 60 * KiB);
    // A job that printed nothing after its end does not count; output for a finished job is not the store's concern here.
    await close();
  } finally {
    await cleanup();
  }
});
