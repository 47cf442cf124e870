// The agent's result outbox on a real directory (client/jobs/outbox.ts):
// results carry their host name and an agent handles only its own (and the
// unnamed ones older agents saved); the outbox is bounded in count and bytes,
// oldest dropped first with a log line, other hosts' files never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Outbox } from '../../client/jobs/outbox.js';
import { MAX_REASON, MAX_UNREPORTED, parseMessage, type JobEnd } from '../../common/protocol/messages.js';
import { captureLog, type CapturedLog } from '../helpers/log-capture.js';

const capture = (): CapturedLog => captureLog('info');

function end(jobId: string, startedAt: number, extra: Partial<JobEnd> = {}): JobEnd {
  return { type: 'job.end', jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date(startedAt).toISOString(), durationMs: 10, ...extra };
}

async function withDir(fn: (stateDir: string, outboxDir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bento-outbox-'));
  try {
    const outboxDir = path.join(dir, 'outbox');
    await mkdir(outboxDir);
    await fn(dir, outboxDir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Write a result file as some agent saved it (host undefined: the format from before names were saved). */
async function seed(outboxDir: string, e: JobEnd, host?: string): Promise<void> {
  await writeFile(path.join(outboxDir, `${e.jobId}.json`), JSON.stringify(host ? { ...e, host } : e));
}

/** The documented default (docs/security.md, agent spools). */
const MAX_BYTES = 1024 * 1024;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const id = (i: number): string => `job${String(i).padStart(6, '0')}`;

test('at most MAX_UNREPORTED results (what one hello can name): the oldest go first, each with a log line', async () => {
  await withDir(async (stateDir, outboxDir) => {
    for (let i = 0; i < MAX_UNREPORTED + 44; i++) await seed(outboxDir, end(id(i), T0 + i * 1000));
    const { log, lines } = capture();
    const ob = new Outbox(stateDir, { host: 'web1', log });
    await ob.init(); // an outbox an older, unbounded agent filled
    let left = await ob.list();
    assert.equal(left.length, MAX_UNREPORTED);
    assert.equal(left[0]!.jobId, id(44), 'the 44 oldest were dropped');
    const drops = lines().filter((l) => String(l['msg']).startsWith('outbox full'));
    assert.deepEqual(drops.map((l) => l['jobId']), Array.from({ length: 44 }, (_, i) => id(i)));
    assert.equal(drops[0]!['maxEntries'], MAX_UNREPORTED);

    // A new result when full: the oldest remaining one makes room.
    await ob.put(end('newest0001', T0 + 10_000_000));
    left = await ob.list();
    assert.equal(left.length, MAX_UNREPORTED);
    assert.equal(left[0]!.jobId, id(45));
    assert.equal(left[left.length - 1]!.jobId, 'newest0001');
  });
});

test('at most 1 MiB on disk: long results are dropped oldest first', async () => {
  await withDir(async (stateDir, outboxDir) => {
    // The longest results the protocol accepts (reason 4 KiB): fewer than MAX_UNREPORTED fit.
    const reason = 'x'.repeat(4096);
    for (let i = 0; i < MAX_UNREPORTED; i++) await seed(outboxDir, end(id(i), T0 + i * 1000, { outcome: 'failure', exitCode: 1, reason }));
    const { log, lines } = capture();
    const ob = new Outbox(stateDir, { host: 'web1', log });
    await ob.init();
    const names = await readdir(outboxDir);
    let bytes = 0;
    for (const n of names) bytes += (await stat(path.join(outboxDir, n))).size;
    assert.ok(bytes <= MAX_BYTES, `${bytes} bytes on disk`);
    const kept = await ob.list();
    assert.ok(kept.length < MAX_UNREPORTED && kept.length > 0, `${kept.length} kept`);
    assert.equal(kept[0]!.jobId, id(MAX_UNREPORTED - kept.length), 'the newest are the ones kept');
    assert.equal(lines().filter((l) => String(l['msg']).startsWith('outbox full')).length, MAX_UNREPORTED - kept.length);
  });
});

test('results are saved with the host name; another host\'s are not listed, not deleted on ack and not dropped by the bound', async () => {
  await withDir(async (stateDir, outboxDir) => {
    const { log, lines } = capture();
    const ob = new Outbox(stateDir, { host: 'web1', log });
    await ob.init();
    await ob.put(end('ownJob000001', T0 + 5000));
    const saved = JSON.parse(await readFile(path.join(outboxDir, 'ownJob000001.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(saved['host'], 'web1', 'saved with its host name');

    await seed(outboxDir, end('legacyJob001', T0 + 1000)); // no name: counts as ours
    for (let i = 0; i < MAX_UNREPORTED + 10; i++) await seed(outboxDir, end(`other${String(i).padStart(5, '0')}`, T0 + i), 'web2');
    const listed = await ob.list();
    assert.deepEqual(listed.map((e) => e.jobId), ['legacyJob001', 'ownJob000001']);
    assert.equal('host' in listed[1]!, false, 'sent as a plain job.end');
    assert.equal(lines().filter((l) => String(l['msg']).includes('saved by another host')).length, MAX_UNREPORTED + 10, 'each foreign file logged once');
    await ob.list();
    assert.equal(lines().filter((l) => String(l['msg']).includes('saved by another host')).length, MAX_UNREPORTED + 10, 'and not again at the next hello');

    // An ack for another host's job does not delete its only copy; ours go.
    await ob.remove('other00000');
    await ob.remove('legacyJob001');
    await ob.remove('ownJob000001');
    const after = await readdir(outboxDir);
    assert.ok(after.includes('other00000.json'));
    assert.ok(!after.includes('legacyJob001.json') && !after.includes('ownJob000001.json'));
    // The bound counts only this host's results: a full outbox of ours leaves theirs alone.
    for (let i = 0; i < MAX_UNREPORTED + 1; i++) await seed(outboxDir, end(id(i), T0 + 100_000 + i));
    await ob.put(end('ownJob000002', T0 + 900_000));
    const files = await readdir(outboxDir);
    assert.equal(files.filter((f) => f.startsWith('other')).length, MAX_UNREPORTED + 10);
    assert.equal((await ob.list()).length, MAX_UNREPORTED);
  });
});

test('the running-job marker carries the host name; another host\'s marker is not reported as ours', async () => {
  await withDir(async (stateDir) => {
    const mine = new Outbox(stateDir, { host: 'web1' });
    await mine.init();
    await mine.markRunning({ jobId: 'runJob000001', action: 'switch', startedAt: new Date(T0).toISOString(), pid: 1 });
    assert.equal((await mine.readRunning())?.jobId, 'runJob000001');
    assert.equal(await new Outbox(stateDir, { host: 'web2' }).readRunning(), null);
    // An unnamed marker (older agent) is ours.
    await writeFile(path.join(stateDir, 'current-job.json'), JSON.stringify({ jobId: 'runJob000002', action: 'boot', startedAt: new Date(T0).toISOString(), pid: 1 }));
    assert.equal((await new Outbox(stateDir, { host: 'web2' }).readRunning())?.jobId, 'runJob000002');
  });
});

test('a file too large to be a result is skipped and left alone', async () => {
  await withDir(async (stateDir, outboxDir) => {
    const big = path.join(outboxDir, 'hugeJob00001.json');
    await writeFile(big, JSON.stringify({ ...end('hugeJob00001', T0), reason: 'y'.repeat(200_000) }));
    const ob = new Outbox(stateDir, { host: 'web1' });
    await ob.init();
    assert.deepEqual(await ob.list(), []);
    assert.ok((await stat(big)).size > 200_000, 'not deleted');
  });
});

test('a result with a reason longer than the hub accepts is cut, saying so, and then passes the hub\'s validator', () => withDir(async (stateDir, outboxDir) => {
  const box = new Outbox(stateDir, { host: 'web1' });
  await box.init();
  const long = `switch failed: ${'x'.repeat(20_000)}`;
  await box.put(end('job-longreason1', 1000, { outcome: 'failure', exitCode: 1, reason: long }));
  // And one an older agent saved uncut: cut on its way out.
  await seed(outboxDir, end('job-longreason2', 2000, { outcome: 'failure', exitCode: 1, reason: long }));
  const listed = await box.list();
  assert.equal(listed.length, 2);
  for (const r of listed) {
    assert.ok(r.reason!.length <= MAX_REASON, `reason of ${r.reason!.length} characters`);
    assert.ok(r.reason!.startsWith('switch failed: xxx'));
    assert.match(r.reason!, /\[\.\.\. \d+ more characters cut\]$/);
    const parsed = parseMessage(JSON.parse(JSON.stringify(r)) as unknown, 'agent');
    assert.equal(parsed.type, 'job.end');
  }
}));
