// The file backend's own parts on the real file system: the group-committed
// journal (hub/store/journal.ts), the job logs (hub/store/job-log.ts), and the
// job and host-state stores on them. What every backend must do is in the
// contract suites (store-contract-*.test.ts); this file checks what only
// files have: commit counts, torn lines, compaction, old formats, migration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { EVENTUAL_MS, KeyedJournal } from '../../hub/store/journal.js';
import { FileJobOutput } from '../../hub/store/job-log.js';
import { openFileBackend } from '../../hub/store/file-backend.js';
import { JobStore, isJobRecord, readJobRecords, type JobRecord } from '../../hub/store/jobs.js';
import { HostStateStore, readHostState } from '../../hub/store/host-state.js';
import { silentLogger } from '../../common/platform/log.js';
import { tmpDir } from '../helpers/proc.js';

const log = silentLogger();
const accept = (_k: string, v: unknown): v is { n: number } => typeof (v as { n?: unknown })?.n === 'number';

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
}
const keysOf = async (file: string): Promise<string[]> => (await lines(file)).map((l) => (JSON.parse(l) as { k?: string }).k).filter((k): k is string => k !== undefined);
const readOnly = (file: string) => KeyedJournal.open({ file, log, accept, readOnly: true });

test('journal: changes survive a reopen; deletes are tombstones; concurrent changes share one commit', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'j.ndjson');
    const j = await KeyedJournal.open({ file, log, accept });
    await Promise.all(Array.from({ length: 1000 }, (_, i) => j.set(`k${i}`, { n: i })));
    // 1000 changes made in one turn: one batch, one fdatasync (not 1000).
    assert.equal(j.stats().commits, 1);
    await j.delete('k7');
    await j.set('k8', { n: -8 });
    assert.equal(j.stats().commits, 3);
    await j.close();
    const back = await readOnly(file);
    assert.equal(back.size, 999);
    assert.equal(back.has('k7'), false);
    assert.deepEqual(back.get('k8'), { n: -8 });
    await assert.rejects(back.set('x', { n: 1 }), /read-only/);
    await back.close();
    const again = await KeyedJournal.open({ file, log, accept });
    assert.equal(again.size, 999);
    await again.close();
  } finally { await cleanup(); }
});

test('journal: a torn last line (crash mid-write) is skipped and the file rewritten before the next append', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'j.ndjson');
    await writeFile(file, `${JSON.stringify({ k: 'a', v: { n: 1 } })}\n${JSON.stringify({ k: 'b', v: { n: 2 } })}\n{"k":"c","v":{"n`);
    const j = await KeyedJournal.open({ file, log, accept });
    assert.deepEqual([...j.keys()], ['a', 'b']);
    await j.set('d', { n: 4 });
    assert.equal(j.stats().compactions, 1, 'rewritten, so "d" cannot glue onto the torn line');
    assert.deepEqual(await keysOf(file), ['a', 'b', 'd']);
    // Invalid values and garbage keys are dropped at replay, never handed to the store.
    await appendFile(file, `${JSON.stringify({ k: 'e', v: { n: 'five' } })}\nnot json\n`);
    await j.close();
    const k = await KeyedJournal.open({ file, log, accept });
    assert.deepEqual([...k.keys()].sort(), ['a', 'b', 'd']);
    await k.close();
  } finally { await cleanup(); }
});

test('journal: the file is compacted as it grows, and keeps only live records', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'j.ndjson');
    const j = await KeyedJournal.open({ file, log, accept, compactFactor: 2, compactSlack: 50 });
    for (let i = 0; i < 400; i += 1) await j.set(`k${i % 10}`, { n: i });
    assert.ok(j.stats().compactions >= 5, `compactions ${j.stats().compactions}`);
    const n = (await lines(file)).length;
    assert.ok(n <= 2 * 10 + 50 + 1, `the file holds ${n} lines for 10 live records`);
    await j.close();
    const back = await readOnly(file);
    assert.deepEqual(back.get('k9'), { n: 399 });
    assert.equal(back.entry('k9')?.revision, 400, 'revisions survive compaction');
    await back.close();
  } finally { await cleanup(); }
});

test('journal: lines written before revisions are numbered in order; the counter survives a rewrite that dropped the newest change', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'j.ndjson');
    // What a hub before revisions wrote: no "r".
    await writeFile(file, [{ k: 'a', v: { n: 1 } }, { k: 'b', v: { n: 2 } }, { k: 'a', v: { n: 3 } }].map((e) => JSON.stringify(e)).join('\n') + '\n');
    const j = await KeyedJournal.open({ file, log, accept });
    assert.deepEqual([j.entry('a')?.revision, j.entry('b')?.revision], [3, 2]);
    assert.equal(await j.set('c', { n: 4 }), 4);
    await j.delete('c'); // revision 5, then gone from the rewrite
    await j.compactNow();
    await j.close();
    const again = await KeyedJournal.open({ file, log, accept });
    assert.equal(await again.set('d', { n: 6 }), 6, 'not 4 or 5 again');
    await again.close();
  } finally { await cleanup(); }
});

test('journal: an eventual change waits for the next commit (or EVENTUAL_MS), a newer change of its key replaces its line, close writes it', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'j.ndjson');
    const j = await KeyedJournal.open({ file, log, accept });
    // Alone, it starts no commit at once; readers see it at once.
    const a = j.set('a', { n: 1 }, { eventually: true });
    assert.deepEqual(j.get('a'), { n: 1 });
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(j.stats().commits, 0);
    // A durable change carries it: one commit for both.
    await Promise.all([a, j.set('b', { n: 2 })]);
    assert.equal(j.stats().commits, 1);
    // Replaced by a newer change of the same key before any commit: one line for "c", the newest value.
    const c1 = j.set('c', { n: 1 }, { eventually: true });
    const c2 = j.set('c', { n: 2 }, { eventually: true });
    const t0 = Date.now();
    await Promise.all([c1, c2]);
    assert.ok(Date.now() - t0 >= EVENTUAL_MS - 5, 'on its own, after EVENTUAL_MS');
    assert.equal(j.stats().commits, 2);
    // A durable change after an eventual one of the same key: the durable one is what stays.
    const d1 = j.set('d', { n: 1 }, { eventually: true });
    await j.set('d', { n: 2 });
    await d1;
    // An eventual deletion, then close: close writes it.
    void j.delete('b', { eventually: true });
    await j.close();
    assert.deepEqual((await keysOf(file)).filter((k) => k === 'c' || k === 'd'), ['c', 'd']);
    const back = await readOnly(file);
    assert.deepEqual([...back.keys()].sort(), ['a', 'c', 'd']);
    assert.deepEqual(back.get('c'), { n: 2 });
    assert.deepEqual(back.get('d'), { n: 2 });
    await back.close();
  } finally { await cleanup(); }
});

test('job log: seq per job, a line with "\\n" or a leading "! " stays one stdout line; old logs are read; seq continues after a reopen', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const out = new FileJobOutput(dir, log);
    assert.equal(out.append('jobaaaaaaaa', 'stdout', 'fine').seq, 1);
    assert.equal(out.append('jobaaaaaaaa', 'stdout', 'x\n! forged stderr').seq, 2);
    assert.equal(out.append('jobaaaaaaaa', 'stderr', 'real stderr').seq, 3);
    await out.close();
    assert.equal((await lines(path.join(dir, 'jobaaaaaaaa.log'))).length, 3, 'one physical line per append');
    const again = new FileJobOutput(dir, log);
    assert.deepEqual((await again.read('jobaaaaaaaa')).map((l) => [l.seq, l.stream, l.data]), [
      [1, 'stdout', 'fine'], [2, 'stdout', 'x\n! forged stderr'], [3, 'stderr', 'real stderr'],
    ]);
    assert.equal(again.append('jobaaaaaaaa', 'stdout', 'after a restart').seq, 4);
    // A log from before this format, with a torn last line from a crash.
    await writeFile(path.join(dir, 'jobbbbbbbbb.log'), '  building\n! warning: x\n  done\n[4,"o","tor');
    assert.equal(again.append('jobbbbbbbbb', 'stdout', 'resumed').seq, 4);
    await again.close();
    const back = await new FileJobOutput(dir, log).read('jobbbbbbbbb');
    assert.deepEqual(back.map((l) => [l.seq, l.stream, l.data]), [
      [1, 'stdout', 'building'], [2, 'stderr', 'warning: x'], [3, 'stdout', 'done'], [4, 'stdout', 'resumed'],
    ]);
    assert.deepEqual(back.map((l) => l.ts === null), [true, true, true, false], 'old lines have no time; the new one has');
    assert.throws(() => out.append('../escape', 'stdout', 'x'), /invalid job id/);
    assert.deepEqual(await out.read('../../etc/passwd'), []);
  } finally { await cleanup(); }
});

test('job log: lines without a time (written before timestamps) are read with ts null; a note has its own mark; a bad time is dropped, not guessed', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    await writeFile(path.join(dir, 'jobcccccccc.log'), '[1,"o","plain"]\n[2,"e","warning: y"]\n[3,"o","bad time",-5]\n[4,"x","unknown mark",1]\n');
    const out = new FileJobOutput(dir, log);
    const before = Date.now();
    const r = out.append('jobcccccccc', 'note', 'bento: secrets version none in place');
    assert.equal(r.seq, 3, 'after the last good line (2), skipping the ones that do not parse');
    await out.close();
    const raw = await lines(path.join(dir, 'jobcccccccc.log'));
    assert.deepEqual(JSON.parse(raw.at(-1)!), [3, 'n', 'bento: secrets version none in place', r.ts]);
    assert.ok(r.ts >= before && r.ts <= Date.now());
    assert.deepEqual(await new FileJobOutput(dir, log).read('jobcccccccc'), [
      { seq: 1, stream: 'stdout', data: 'plain', ts: null },
      { seq: 2, stream: 'stderr', data: 'warning: y', ts: null },
      { seq: 3, stream: 'note', data: 'bento: secrets version none in place', ts: r.ts },
    ]);
  } finally { await cleanup(); }
});

function job(id: string, host: string, state: JobRecord['state'], at: number): JobRecord {
  return { id, host, action: 'switch', state, requestedAt: new Date(at).toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null };
}

async function records(stateDir: string): Promise<JobRecord[]> {
  const b = openFileBackend({ stateDir, readOnly: true });
  try { return await readJobRecords(b); } finally { await b.close(); }
}

test('job store: keeps the newest `history` finished jobs per host, deletes the rest and their logs', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const b = openFileBackend({ stateDir: dir });
    const store = await JobStore.open(b, { history: 3, log });
    for (let i = 0; i < 6; i += 1) {
      const id = `web1job0000${i}`;
      store.appendOutput(id, 'stdout', `line of ${id}`);
      await store.save(job(id, 'web1', 'running', 1000 + i));
      await store.save(job(id, 'web1', 'success', 1000 + i));
    }
    await store.save(job('web2job00000', 'web2', 'failure', 999));
    await store.save(job('web1job0000q', 'web1', 'queued', 2000)); // not finished: never pruned
    await store.close();
    await b.close();
    const onDisk = (await records(dir)).map((j) => j.id).sort();
    assert.deepEqual(onDisk, ['web1job00003', 'web1job00004', 'web1job00005', 'web1job0000q', 'web2job00000']);
    const logs = (await readdir(path.join(dir, 'jobs'))).filter((f) => f.endsWith('.log')).sort();
    assert.deepEqual(logs, ['web1job00003.log', 'web1job00004.log', 'web1job00005.log']);
    // A reopened store keeps pruning from where it was.
    const b2 = openFileBackend({ stateDir: dir });
    const again = await JobStore.open(b2, { history: 3, log });
    assert.deepEqual((await again.readOutput('web1job00005')).map((l) => l.data), ['line of web1job00005']);
    await again.save(job('web1job00006', 'web1', 'success', 1006));
    await again.close();
    await b2.close();
    assert.equal((await records(dir)).filter((j) => j.host === 'web1' && j.state === 'success').length, 3);
  } finally { await cleanup(); }
});

test('journal: an eventual change a newer change of its key replaces before the commit is never encoded', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'j.ndjson');
    const j = await KeyedJournal.open({ file, log, accept });
    // toJSON counts how often the journal turns each value into its line.
    const encoded = { dispatched: 0, running: 0, end: 0 };
    const value = (n: number, what: keyof typeof encoded) => ({ n, toJSON: () => { encoded[what] += 1; return { n }; } });
    // A fast job's three records: the first two nobody waits for (the agent holds the job), the end is durable.
    const writes = [
      j.set('job', value(1, 'dispatched'), { eventually: true }),
      j.set('job', value(2, 'running'), { eventually: true }),
      j.set('job', value(3, 'end')),
    ];
    assert.deepEqual(await Promise.all(writes), [1, 2, 3], 'each resolves with its revision once durable');
    // Before: every change was encoded when it was made (three JSON encodings of the record per fast job, one line written).
    assert.deepEqual(encoded, { dispatched: 0, running: 0, end: 1 });
    // One still the newest at its commit is encoded then, once.
    const last = j.set('other', value(4, 'running'), { eventually: true });
    await j.settled();
    await last;
    assert.equal(encoded.running, 1);
    await j.close();
    const back = await readOnly(file);
    assert.deepEqual(back.get('job'), { n: 3 });
    assert.deepEqual(back.get('other'), { n: 4 });
    await back.close();
  } finally { await cleanup(); }
});

test('job store on the journal: a job\'s dispatched, running and end records issued at once share one commit, and the end is what is on disk', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'jobs.ndjson');
    const records = await KeyedJournal.open<JobRecord>({ file, log, accept: isJobRecord });
    const store = new JobStore({ records, output: new FileJobOutput(path.join(dir, 'out'), log), history: 10, log });
    // What the scheduler does for a fast job: none of these is waited for before the next (the agent holds the job).
    const ids = Array.from({ length: 100 }, (_, i) => `web1job${String(i).padStart(5, '0')}`);
    const writes = ids.flatMap((id, i) => [
      store.save(job(id, `h${i}`, 'dispatched', 1000)),
      store.save(job(id, `h${i}`, 'running', 1000)),
      store.save(job(id, `h${i}`, 'success', 1000)),
    ]);
    await Promise.all(writes);
    // Before: each record's next write waited for the previous one's fdatasync (three commits in a row per job).
    assert.equal(records.stats().commits, 1);
    await store.close();
    const back = await KeyedJournal.open<JobRecord>({ file, log, accept: isJobRecord, readOnly: true });
    assert.deepEqual(ids.map((id) => back.get(id)?.state), ids.map(() => 'success'));
    await back.close();
  } finally { await cleanup(); }
});

test('file backend: the one-file-per-record layout moves into the journals; a read-only open sees it without moving or writing anything', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const jobs = path.join(dir, 'jobs');
    const hosts = path.join(dir, 'hosts');
    await mkdir(jobs, { recursive: true });
    await mkdir(hosts, { recursive: true });
    await writeFile(path.join(jobs, 'legacyjob001.json'), JSON.stringify(job('legacyjob001', 'web1', 'success', 5)));
    await writeFile(path.join(jobs, 'notajob.json'), '{}');
    await writeFile(path.join(hosts, 'web1.json'), JSON.stringify({ name: 'web1', system: '/nix/store/x-sys', lastSeenAt: 'then' }));

    // Offline readers (`bento-hub diff`, tests) see what the hub would load, and touch nothing.
    const ro = openFileBackend({ stateDir: dir, readOnly: true });
    assert.deepEqual((await readJobRecords(ro)).map((j) => j.id), ['legacyjob001']);
    assert.equal((await readHostState(ro, 'web1'))?.system, '/nix/store/x-sys');
    await ro.close();
    assert.equal(existsSync(path.join(jobs, '_journal.ndjson')), false);
    assert.deepEqual((await readdir(hosts)), ['web1.json']);

    const b = openFileBackend({ stateDir: dir });
    const store = await JobStore.open(b, { history: 50, log });
    assert.deepEqual(store.all().map((j) => j.id), ['legacyjob001']);
    const hs = await HostStateStore.open(b);
    assert.equal(hs.get('web1')?.system, '/nix/store/x-sys');
    await hs.update('web1', { carrier: 'ssh' });
    await store.close();
    await hs.close();
    await b.close();
    assert.deepEqual((await readdir(jobs)).sort(), ['_journal.ndjson', 'notajob.json']);
    assert.deepEqual(await readdir(hosts), ['_journal.ndjson']);
    const ro2 = openFileBackend({ stateDir: dir, readOnly: true });
    const back = await readHostState(ro2, 'web1');
    await ro2.close();
    assert.deepEqual([back?.system, back?.carrier], ['/nix/store/x-sys', 'ssh']);
  } finally { await cleanup(); }
});
