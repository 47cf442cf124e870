// The hub's group-committed journal (hub/store/journal.ts) and the job and
// host-state stores on it, on the real file system.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KeyedJournal, readJournal } from '../../hub/store/journal.js';
import { JobStore, readJobRecords, type JobRecord } from '../../hub/store/jobs.js';
import { HostStateStore, readHostState } from '../../hub/store/host-state.js';
import { silentLogger } from '../../common/platform/log.js';
import { tmpDir } from '../helpers/proc.js';

const log = silentLogger();
const accept = (_k: string, v: unknown): v is { n: number } => typeof (v as { n?: unknown })?.n === 'number';

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
}

test('journal: changes survive a reopen; deletes are tombstones; concurrent changes share one commit', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'j.ndjson');
    const j = await KeyedJournal.open({ file, log, accept });
    await Promise.all(Array.from({ length: 1000 }, (_, i) => j.set(`k${i}`, { n: i })));
    // 1000 changes made in one turn: one batch, one fdatasync (not 1000).
    assert.equal(j.stats.commits, 1);
    await j.delete('k7');
    await j.set('k8', { n: -8 });
    assert.equal(j.stats.commits, 3);
    await j.close();
    const back = await readJournal(file, accept);
    assert.equal(back.size, 999);
    assert.equal(back.has('k7'), false);
    assert.deepEqual(back.get('k8'), { n: -8 });
    const again = await KeyedJournal.open({ file, log, accept });
    assert.equal(again.map.size, 999);
    await again.close();
  } finally { await cleanup(); }
});

test('journal: a torn last line (crash mid-write) is skipped and the file rewritten before the next append', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'j.ndjson');
    await writeFile(file, `${JSON.stringify({ k: 'a', v: { n: 1 } })}\n${JSON.stringify({ k: 'b', v: { n: 2 } })}\n{"k":"c","v":{"n`);
    const j = await KeyedJournal.open({ file, log, accept });
    assert.deepEqual([...j.map.keys()], ['a', 'b']);
    await j.set('d', { n: 4 });
    assert.equal(j.stats.compactions, 1, 'rewritten, so "d" cannot glue onto the torn line');
    assert.deepEqual((await lines(file)).map((l) => (JSON.parse(l) as { k: string }).k), ['a', 'b', 'd']);
    // Invalid values and garbage keys are dropped at replay, never handed to the store.
    await appendFile(file, `${JSON.stringify({ k: 'e', v: { n: 'five' } })}\nnot json\n`);
    await j.close();
    const k = await KeyedJournal.open({ file, log, accept });
    assert.deepEqual([...k.map.keys()].sort(), ['a', 'b', 'd']);
    await k.close();
  } finally { await cleanup(); }
});

test('journal: the file is compacted as it grows, and keeps only live records', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const file = path.join(dir, 'j.ndjson');
    const j = await KeyedJournal.open({ file, log, accept, compactFactor: 2, compactSlack: 50 });
    for (let i = 0; i < 400; i += 1) await j.set(`k${i % 10}`, { n: i });
    assert.ok(j.stats.compactions >= 5, `compactions ${j.stats.compactions}`);
    const n = (await lines(file)).length;
    assert.ok(n <= 2 * 10 + 50, `the file holds ${n} lines for 10 live records`);
    await j.close();
    assert.deepEqual((await readJournal(file, accept)).get('k9'), { n: 399 });
  } finally { await cleanup(); }
});

function job(id: string, host: string, state: JobRecord['state'], at: number): JobRecord {
  return { id, host, action: 'switch', state, requestedAt: new Date(at).toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null };
}

test('job store: keeps the newest `history` finished jobs per host, deletes the rest and their logs', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const store = new JobStore(dir, 3, log);
    await store.load();
    for (let i = 0; i < 6; i += 1) {
      const id = `web1job0000${i}`;
      store.appendOutput(id, 'stdout', `line of ${id}`);
      await store.save(job(id, 'web1', 'running', 1000 + i));
      await store.save(job(id, 'web1', 'success', 1000 + i));
    }
    await store.save(job('web2job00000', 'web2', 'failure', 999));
    await store.save(job('web1job0000q', 'web1', 'queued', 2000)); // not finished: never pruned
    await store.close();
    const onDisk = (await readJobRecords(dir)).map((j) => j.id).sort();
    assert.deepEqual(onDisk, ['web1job00003', 'web1job00004', 'web1job00005', 'web1job0000q', 'web2job00000']);
    const logs = (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();
    assert.deepEqual(logs, ['web1job00003.log', 'web1job00004.log', 'web1job00005.log']);
    // A reopened store keeps pruning from where it was.
    const again = new JobStore(dir, 3, log);
    await again.load();
    await again.save(job('web1job00006', 'web1', 'success', 1006));
    await again.close();
    assert.equal((await readJobRecords(dir)).filter((j) => j.host === 'web1' && j.state === 'success').length, 3);
  } finally { await cleanup(); }
});

test('job and host-state stores move the one-file-per-record layout into their journals', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    const jobs = path.join(dir, 'jobs');
    const hosts = path.join(dir, 'hosts');
    const store0 = new JobStore(jobs, 50, log);
    await store0.load(); // creates the directory
    await store0.close();
    await writeFile(path.join(jobs, 'legacyjob001.json'), JSON.stringify(job('legacyjob001', 'web1', 'success', 5)));
    await writeFile(path.join(jobs, 'notajob.json'), '{}');
    const store = new JobStore(jobs, 50, log);
    assert.deepEqual((await store.load()).map((j) => j.id), ['legacyjob001']);
    await store.close();
    assert.deepEqual((await readdir(jobs)).sort(), ['_journal.ndjson', 'notajob.json']);

    const hs0 = new HostStateStore(hosts, log);
    await hs0.load();
    await hs0.close();
    await writeFile(path.join(hosts, 'web1.json'), JSON.stringify({ name: 'web1', system: '/nix/store/x-sys', lastSeenAt: 'then' }));
    const hs = new HostStateStore(hosts, log);
    await hs.load();
    assert.equal(hs.get('web1')?.system, '/nix/store/x-sys');
    await hs.update('web1', { carrier: 'ssh' });
    await hs.close();
    assert.deepEqual(await readdir(hosts), ['_journal.ndjson']);
    const back = await readHostState(hosts, 'web1');
    assert.deepEqual([back?.system, back?.carrier], ['/nix/store/x-sys', 'ssh']);
  } finally { await cleanup(); }
});
