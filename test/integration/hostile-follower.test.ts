// Issue 13 parts 3 and 4 with a real hub and a real agent: a job printing
// 500 MB (500,000 numbered lines of 1 KB), followed by an admin who asked for
// it (`trigger --follow`) and then stopped reading, as `bento-hub trigger web1
// | less` left idle does. Before, the hub kept everything the reader did not
// take in the admin socket's buffer (500 MB of output: 815 MB RSS) and wrote
// the whole output to state/jobs/ID.log (525 MB). Now the hub stays under its
// baseline + 64 MiB; the reader, once it reads again, is told how many lines
// it missed and that `bento-hub job ID` has them, and gets the job's end; the
// stored log is about limits.jobOutputBytes (16 MiB), its head and its tail
// kept, with a line saying what was cut.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { stat, writeFile } from 'node:fs/promises';
import { TestFleet } from '../helpers/fleet.js';
import { sleep, waitFor, raceTimeout } from '../helpers/proc.js';
import { MiB, rssBytes, watchRss } from '../helpers/rss.js';
import { encodeLine, LineDecoder } from '../../common/protocol/codec.js';
import type { AdminEvent } from '../../common/protocol/admin.js';

let fleet: TestFleet;
const LINES = 500_000;

before(async () => {
  fleet = await TestFleet.create();
  const rebuild = path.join(fleet.dir, 'print-500mb.sh');
  // 500,000 lines "N xxx...x" of 1000 bytes: 500 MB, as fast as awk prints.
  await writeFile(rebuild, `#!/bin/sh\nexec awk 'BEGIN { s = sprintf("%990s", ""); gsub(/ /, "x", s); for (i = 0; i < ${LINES}; i++) printf "%08d %s\\n", i, s }'\n`, { mode: 0o755 });
  await fleet.addHost('web1');
  await fleet.startHub();
  fleet.startAgent('web1', await fleet.agentConfig('web1', { rebuildCommand: [rebuild] }));
  await fleet.waitConnected(['web1']);
});
after(async () => { await fleet?.close(); });

/** An admin request on a raw socket that reads nothing until resume() (a stalled `trigger ... | less`). */
function stalledAdmin(req: object): { events: AdminEvent[]; resume(): void; closed: Promise<void>; sock: net.Socket } {
  const sock = net.connect(path.join(fleet.fleetDir, 'hub.sock'));
  const events: AdminEvent[] = [];
  const decoder = new LineDecoder((v) => events.push(v as AdminEvent), (err) => { throw err; }, 16 * MiB);
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => undefined);
  sock.once('connect', () => { sock.write(encodeLine(req)); sock.pause(); });
  return { events, sock, closed, resume: () => { sock.on('data', (c: Buffer) => decoder.push(c)); sock.resume(); } };
}

/** The state of the host's last finished job if it is `id` (status, which reads no output). */
async function endedAs(id: string): Promise<string | null> {
  const r = await fleet.hubCli(['status', 'web1', '--json']);
  const last = (JSON.parse(r.stdout) as { hosts: Array<{ lastJob: { id: string; state: string } | null }> }).hosts[0]?.lastJob;
  return last?.id === id ? last.state : null;
}

test('a 500 MB job and a follower that stops reading: the hub stays under baseline + 64 MiB; the follower is told what it missed; the stored log is capped', async (t) => {
  const hub = fleet.hub!;
  const pid = hub.child.pid!;
  await sleep(1000);
  const baseline = rssBytes(pid);
  const rss = watchRss(pid);
  const admin = stalledAdmin({ op: 'trigger', hosts: ['web1'], all: false, tags: [], action: 'switch', queue: false, follow: true });
  // The job id, from the hub's log of the agent's start (the follower reads nothing).
  const jobId = (await waitFor('the job to start', () => /"jobId":"([A-Za-z0-9_-]+)".*"msg":"job started"/.exec(fleet.agents.get('web1')!.output())?.[1], 30_000));
  await waitFor('the job to end', () => endedAs(jobId), 240_000, 1000);
  await sleep(1000);
  const peak = rss.stop();
  t.diagnostic(`hub RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB`);
  assert.ok(peak < baseline + 64 * MiB, `peak RSS ${(peak / MiB).toFixed(0)} MiB, baseline ${(baseline / MiB).toFixed(0)} MiB`);

  // The follower reads again: what it got, a plain notice of what it missed and where it is, the end, done.
  admin.resume();
  await raceTimeout(admin.closed, 60_000, undefined);
  const evs = admin.events;
  assert.equal(evs.at(-1)?.ev, 'done', JSON.stringify(evs.slice(-3)));
  const end = evs.find((e) => e.ev === 'end');
  assert.equal(end?.ev === 'end' && end.outcome, 'success');
  const skipped = evs.filter((e): e is Extract<AdminEvent, { ev: 'skipped' }> => e.ev === 'skipped');
  assert.ok(skipped.length >= 1, 'told that lines were skipped');
  assert.match(skipped[0]!.message, new RegExp(`^\\d+ lines \\([\\d.]+ [KMG]iB\\) of web1's output skipped here: this reader fell behind; the full log: bento-hub job ${jobId}$`));
  const outputs = evs.filter((e) => e.ev === 'output').length;
  assert.ok(outputs + skipped.reduce((n, s) => n + s.lines, 0) > 0);

  // The stored log: about the cap, its head from line 0 and its tail to the last line, the cut said.
  const size = (await stat(path.join(fleet.fleetDir, 'state', 'jobs', `${jobId}.log`))).size;
  t.diagnostic(`stored log ${(size / MiB).toFixed(1)} MiB`);
  assert.ok(size <= 16 * MiB + 64 * 1024, `the log is ${size} bytes`);
  const r = await fleet.hubCli(['job', jobId, '--json'], 60_000);
  assert.equal(r.code, 0, r.stderr);
  const stored = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as AdminEvent);
  const lines = stored.filter((e): e is Extract<AdminEvent, { ev: 'output' }> => e.ev === 'output');
  const printed = lines.filter((l) => /^\d{8} x/.test(l.data));
  assert.match(printed[0]!.data, /^00000000 x/, 'the head, from the first line');
  assert.match(printed.at(-1)!.data, new RegExp(`^${String(LINES - 1).padStart(8, '0')} x`), 'the tail, to the last line');
  assert.ok(lines.some((l) => /^bento: \d+ lines \(.*\) of output skipped here by the agent: the hub reads this host's output slower/.test(l.data)),
    'the agent said where it skipped lines (it printed faster than limits.sessionBytesPerSecond)');
  assert.ok(stored.some((e) => e.ev === 'trimmed'), 'the hub\'s cut is marked');
  const seqs = lines.map((l) => l.seq!);
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'seqs increase');
});
