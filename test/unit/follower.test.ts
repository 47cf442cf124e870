// The bounded follower (common/platform/follower.ts, issue 13 part 3) on real
// Unix sockets: a reader that stops reading costs the writer at most its
// bounds; skipped lines are announced where they were, in order; events that
// are never skipped cut the stream past their bound; end() waits for the
// queue. The same mechanism behind SSE (SseStream) on a real HTTP response.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { Follower, FollowerStats } from '../../common/platform/follower.js';
import { SseStream, readSse } from '../../common/platform/web-sse.js';
import { sleep, tmpDir, waitFor } from '../helpers/proc.js';

/** A connected pair of Unix sockets: the server end is written to, the client end read (or not). */
async function pair(): Promise<{ server: net.Socket; client: net.Socket; close(): Promise<void> }> {
  const { dir, cleanup } = await tmpDir('bento-follower-');
  const file = path.join(dir, 's.sock');
  let accepted: (s: net.Socket) => void = () => undefined;
  const got = new Promise<net.Socket>((resolve) => { accepted = resolve; });
  const srv = net.createServer((s) => accepted(s));
  await new Promise<void>((resolve) => srv.listen(file, resolve));
  const client = net.connect(file);
  const server = await got;
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  return {
    server, client,
    async close() { server.destroy(); client.destroy(); await new Promise<void>((r) => srv.close(() => r())); await cleanup(); },
  };
}

const LINE = `${'x'.repeat(1000)}\n`;

function follower(out: net.Socket, stats: FollowerStats, maxQueuedBytes = 64 * 1024, maxKeptBytes = 64 * 1024): Follower {
  return new Follower({
    out, maxQueuedBytes, maxKeptBytes, stats,
    skipped: (group, lines, bytes) => `SKIPPED ${group} ${lines} ${bytes}\n`,
    cut: (held) => `CUT ${held}\n`,
  });
}

test('a reader that stops reading: the writer holds at most its bound; the oldest waiting lines are skipped, announced in place, the newest kept', async () => {
  const p = await pair();
  try {
    p.client.pause();
    const stats = new FollowerStats();
    const f = follower(p.server, stats);
    // 50 MB of lines into a reader that reads nothing: what the kernel and the socket take, plus the bound.
    for (let i = 0; i < 50_000; i++) f.push(`${i} ${LINE}`, 'job1');
    f.push('END\n');
    assert.ok(f.heldBytes <= 64 * 1024 + 16, `held ${f.heldBytes}`);
    assert.ok(p.server.writableLength < 256 * 1024, `the socket buffer holds ${p.server.writableLength}`);
    assert.ok(stats.skippedLines > 40_000, `skipped ${stats.skippedLines}`);
    assert.equal(stats.behind, 1);
    // Now the reader reads: the lines it got, one notice where the gap is, then what came after.
    let text = '';
    p.client.on('data', (c: Buffer) => { text += c.toString(); });
    p.client.resume();
    await waitFor('END', () => text.includes('END\n'), 10_000);
    const lines = text.trimEnd().split('\n');
    const gap = lines.findIndex((l) => l.startsWith('SKIPPED'));
    assert.ok(gap > 0, 'one notice');
    assert.equal(lines.filter((l) => l.startsWith('SKIPPED')).length, 1);
    const [, group, n] = lines[gap]!.split(' ');
    assert.equal(group, 'job1');
    const before = lines.slice(0, gap).map((l) => Number(l.split(' ')[0]));
    const after = lines.slice(gap + 1, -1).map((l) => Number(l.split(' ')[0]));
    assert.deepEqual(before, before.map((_, i) => i), 'lines before the gap, in order, none missing');
    assert.equal(Number(n), stats.skippedLines, 'the notice counts every skipped line');
    assert.equal(before.length + Number(n) + after.length, 50_000, 'every line is sent or counted');
    assert.ok(after.every((x, i) => i === 0 || x === after[i - 1]! + 1), 'lines after the gap in order');
    assert.equal(after.at(-1), 49_999, 'the newest lines are the ones kept');
    assert.equal(stats.behind, 0, 'caught up');
  } finally {
    await p.close();
  }
});

test('events that are never skipped: past their bound the stream is cut with a last notice; end() waits for what is queued', async () => {
  const p = await pair();
  try {
    p.client.pause();
    const stats = new FollowerStats();
    const f = follower(p.server, stats);
    let why = '';
    f.onClose((w) => { why = w; });
    for (let i = 0; i < 10_000 && f.open; i++) f.push(`${i} ${LINE}`);
    assert.equal(f.open, false);
    assert.equal(why, 'cut');
    assert.equal(stats.cut, 1);
    assert.equal(f.heldBytes, 0, 'a cut stream holds nothing');
    let text = '';
    p.client.on('data', (c: Buffer) => { text += c.toString(); });
    p.client.resume();
    await waitFor('the cut notice', () => /\nCUT \d+\n$/.test(text), 10_000);

    const q = await pair();
    try {
      q.client.pause();
      const g = follower(q.server, new FollowerStats(), 1 << 20, 1 << 20);
      for (let i = 0; i < 500; i++) g.push(`${i} ${LINE}`);
      g.end('BYE\n');
      let got = '';
      q.client.on('data', (c: Buffer) => { got += c.toString(); });
      await sleep(50);
      assert.equal(got, '', 'nothing read yet');
      const ended = new Promise<void>((resolve) => q.client.once('end', () => resolve()));
      q.client.resume();
      await ended;
      assert.equal(got.split('\n').length, 502, 'every line, then BYE');
      assert.ok(got.endsWith('499 ' + LINE + 'BYE\n'));
    } finally {
      await q.close();
    }
  } finally {
    await p.close();
  }
});

test('SSE: a page that does not read costs the server at most its bound; a note says how many lines were skipped and where the full log is', async () => {
  const stats = new FollowerStats();
  let sse: SseStream | null = null;
  const server = http.createServer((_req, res) => { sse = new SseStream(res, { maxQueuedBytes: 64 * 1024, fullLog: (g) => `/jobs/${g}/log`, stats }); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const res = await new Promise<http.IncomingMessage>((resolve) => http.get(`http://127.0.0.1:${port}/`, resolve));
    res.pause();
    await waitFor('stream', () => sse);
    for (let i = 0; i < 20_000; i++) sse!.send('line', { stream: 'stdout', data: `${i} ${'y'.repeat(1000)}` }, 'job-aaaaaaaa');
    sse!.send('end', { outcome: 'success' });
    assert.ok(stats.skippedLines > 10_000, `skipped ${stats.skippedLines}`);
    const events: Array<{ event: string; data: string }> = [];
    for await (const e of readSse(res)) {
      events.push(e);
      if (e.event === 'end') break;
    }
    const notes = events.filter((e) => e.event === 'note');
    assert.equal(notes.length, 1);
    assert.match(notes[0]!.data, new RegExp(`bento: ${stats.skippedLines} lines \\(\\d+(\\.\\d)? MiB\\) skipped here: this page fell behind the output; the full log: /jobs/job-aaaaaaaa/log`));
    assert.equal(events.at(-1)!.event, 'end', 'the end is never skipped');
    res.destroy();
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('a reader that fell behind gets the waiting lines in pieces, not a write per line', async () => {
  const p = await pair();
  try {
    p.client.pause();
    // Writes the follower hands to the socket (each a system call, or a place in one).
    let writes = 0;
    const write = p.server.write.bind(p.server) as (chunk: string) => boolean;
    const out = Object.assign(Object.create(p.server) as net.Socket, { write: (chunk: string): boolean => { writes += 1; return write(chunk); } });
    const f = follower(out, new FollowerStats(), 1 << 20, 4 << 20);
    // A fan-out's answers: thousands of short lines that are never skipped, while the reader does not read.
    const n = 20_000;
    for (let i = 0; i < n; i++) f.push(`{"ev":"accepted","host":"host-${i}","jobId":"job-${i}"}\n`);
    f.end('END\n');
    const early = writes;
    let text = '';
    p.client.on('data', (c: Buffer) => { text += c.toString(); });
    p.client.resume();
    await waitFor('END', () => text.endsWith('END\n'), 10_000);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, n + 1, 'every line, then END');
    assert.ok(lines.slice(0, n).every((l, i) => l.includes(`"host-${i}"`)), 'in order');
    // Before: one write per waiting line once the reader came back (~19,800 here).
    assert.ok(writes - early < 100, `${writes - early} writes for the waiting lines (${early} before the reader read)`);
  } finally {
    await p.close();
  }
});
