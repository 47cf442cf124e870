// The soak's diagnostics: a hub's output kept in a file across restarts with
// marker lines (test/helpers/log-file.ts), and the excerpt a problem cycle
// prints from it (test/soak/log-excerpts.ts): every line naming a job, a
// host's lines from the cycle's start on, pino lines made readable.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { LogFile } from '../helpers/log-file.js';
import { tmpDir } from '../helpers/proc.js';
import { formatLine, logExcerpts } from '../soak/log-excerpts.js';

const pino = (time: number, level: number, msg: string, extra: object): string => `${JSON.stringify({ level, time, pid: 1, hostname: 'x', name: 'bento-hub', ...extra, msg })}\n`;

test('a log file keeps what each start wrote, in order, with its markers', async () => {
  const tmp = await tmpDir('bento-logfile-');
  try {
    const file = path.join(tmp.dir, 'hub1', 'hub-output.log');
    const a = new LogFile(file);
    a.mark('start hub1 (pid 10)');
    a.write(Buffer.from('first run\n'));
    a.mark('kill -9 hub1 (pid 10)');
    a.close();
    a.write('after close is dropped\n');
    const b = new LogFile(file);
    b.mark('start hub1 (pid 11)');
    b.write('second run\n');
    b.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 5);
    assert.match(lines[0]!, /^=== \d{4}-\d\d-\d\dT\S+Z start hub1 \(pid 10\) ===$/);
    assert.equal(lines[1], 'first run');
    assert.equal(lines[4], 'second run');
    assert.match(lines[2]!, /kill -9 hub1/);
    assert.match(lines[3]!, /start hub1 \(pid 11\)/);
  } finally {
    await tmp.cleanup();
  }
});

test('a problem excerpt: every line naming a job, a host\'s lines since the cycle began, per hub', async () => {
  const tmp = await tmpDir('bento-excerpt-');
  try {
    const since = Date.parse('2026-12-06T20:07:50.000Z');
    const f1 = new LogFile(path.join(tmp.dir, 'hub1.log'));
    f1.write(pino(since - 60_000, 30, 'agent connected', { host: 'h00066' }));
    f1.write(pino(since - 60_000, 40, 'old trouble', { jobId: 'job1' }));
    f1.mark('soak cycle 13: kill -9 hub2');
    f1.write(pino(since + 4_000, 30, 'agent connected', { host: 'h00066' }));
    f1.write(pino(since + 5_000, 30, 'agent connected', { host: 'h00067' }));
    f1.close();
    const f2 = new LogFile(path.join(tmp.dir, 'hub2.log'));
    f2.write('not json, names job1 anyway\n');
    f2.close();
    const out = logExcerpts({
      files: [{ name: 'hub1', file: path.join(tmp.dir, 'hub1.log') }, { name: 'hub2', file: path.join(tmp.dir, 'hub2.log') }, { name: 'hub3', file: path.join(tmp.dir, 'missing.log') }],
      keys: [{ key: 'job1', kind: 'job' }, { key: 'h00066', kind: 'host' }],
      since, maxLines: 10,
    });
    const text = out.join('\n');
    // The job: its old line too (a job id is rare), and the non-JSON line of hub2.
    assert.match(text, /--- job job1\n {2}hub1 \(\S+\): 1 lines\n {4}20:06:50\.000 WARN old trouble \{"jobId":"job1"\}\n {2}hub2 \(\S+\): 1 lines\n {4}not json, names job1 anyway\n {2}hub3 \(\S+\): 0 lines/);
    // The host: only since the cycle began, not the other host's line.
    assert.match(text, /--- host h00066\n {2}hub1 \(\S+\): 1 lines\n {4}20:07:54\.000 INFO agent connected \{"host":"h00066"\}\n/);
    assert.doesNotMatch(text, /h00067/);
    const cut = logExcerpts({ files: [{ name: 'hub1', file: path.join(tmp.dir, 'hub1.log') }], keys: [{ key: 'agent connected', kind: 'host' }], since: 0, maxLines: 1 });
    assert.match(cut.join('\n'), /3 lines, 2 not shown\n {4}\S+ INFO agent connected \{"host":"h00067"\}/);
  } finally {
    await tmp.cleanup();
  }
});

test('formatLine: markers carry their time, other text passes unchanged', () => {
  assert.equal(formatLine('=== 2026-12-06T20:07:53.945Z kill -9 hub2 ===').time, Date.parse('2026-12-06T20:07:53.945Z'));
  assert.deepEqual(formatLine('{broken'), { text: '{broken', time: undefined });
});
