// `bento-hub job ID [--follow] [--json]` against a real hub and real agents:
// joining mid-job, the stored lines and the live ones meet on their seq with
// no gap and no repeat; a queued job is followed until its host connects and
// runs it (issue 17: how to follow a `trigger --queue` job); exit statuses by
// outcome, an unknown id, a job that has not finished.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { TestFleet, HUB_BIN } from '../helpers/fleet.js';
import { sleep, spawnDaemon, waitFor, raceTimeout } from '../helpers/proc.js';
import { adminCall } from '../../hub/admin/client.js';
import type { AdminEvent } from '../../common/protocol/admin.js';

let fleet: TestFleet;
let rebuild: string;
const LINES = 3000;

before(async () => {
  fleet = await TestFleet.create();
  // 3,000 numbered lines over about 3 s (a pause every 100), then success; hosts named fail* fail.
  rebuild = path.join(fleet.dir, 'count.sh');
  await writeFile(rebuild, [
    '#!/bin/sh',
    `i=0; while [ $i -lt ${LINES} ]; do echo "line $i"; i=$((i+1)); [ $((i % 100)) -eq 0 ] && sleep 0.1; done`,
    'case "$BENTO_HOST" in fail*) echo "it broke" >&2; exit 3;; esac',
    'exit 0',
  ].join('\n'), { mode: 0o755 });
  await fleet.addHosts(['web1', 'fail2', 'late']);
  await fleet.startHub();
  for (const name of ['web1', 'fail2']) await startAgent(name);
  await fleet.waitConnected(['web1', 'fail2']);
});
after(async () => { await fleet?.close(); });

async function startAgent(name: string): Promise<void> {
  fleet.startAgent(name, await fleet.agentConfig(name, { rebuildCommand: [rebuild], rebuildEnv: { BENTO_HOST: name } }));
}

/** Trigger without following; the job id. */
async function start(host: string, queue = false): Promise<string> {
  const e = await adminCall(path.join(fleet.fleetDir, 'hub.sock'), { op: 'trigger', hosts: [host], all: false, tags: [], action: 'switch', queue, follow: false }, 'accepted');
  return e.jobId;
}

function events(stdout: string): AdminEvent[] {
  return stdout.trim().split('\n').map((l) => JSON.parse(l) as AdminEvent);
}

test('joined mid-job: every line once, in order, stored and live lines joined by seq; then the end, exit 0', async () => {
  const id = await start('web1');
  // Some lines are stored by now, the rest come live.
  await waitFor('output to be stored', async () => (await fleet.hubCli(['job', id, '--json'])).stdout.includes('"line 300"'), 15_000, 100);
  const r = await fleet.hubCli(['job', id, '--follow', '--json'], 60_000);
  assert.equal(r.code, 0, r.stderr);
  const evs = events(r.stdout);
  assert.equal(evs[0]!.ev, 'job');
  const out = evs.filter((e): e is Extract<AdminEvent, { ev: 'output' }> => e.ev === 'output');
  const mine = out.filter((e) => /^line \d+$/.test(e.data));
  assert.deepEqual(mine.map((e) => e.data), Array.from({ length: LINES }, (_, i) => `line ${i}`), 'every line once, in order');
  const seqs = out.map((e) => e.seq!);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i), 'seqs with no gap and no repeat');
  const end = evs.find((e) => e.ev === 'end');
  assert.ok(end && end.ev === 'end' && end.outcome === 'success');
  assert.equal(evs.at(-1)!.ev, 'done');
  // Afterwards, without --follow: the same lines from the store, and the outcome as exit status.
  const again = await fleet.hubCli(['job', id, '--json']);
  assert.equal(again.code, 0);
  assert.deepEqual(events(again.stdout).filter((e) => e.ev === 'output').map((e) => (e as { seq: number }).seq), seqs);
  // Text: the record on stderr, the output on stdout.
  const text = await fleet.hubCli(['job', id]);
  assert.match(text.stderr, new RegExp(`^job ${id} on web1: switch, success \\(exit 0\\)`, 'm'));
  assert.match(text.stdout, /^line 0\nline 1\n/m);
});

test('a queued job: `job ID` says it has not finished (exit 9); `job ID --follow` waits for the host and follows it to its end', async () => {
  const r = await fleet.hubCli(['trigger', 'late', '--queue']);
  assert.equal(r.code, 0, r.stderr);
  const id = /follow with: bento-hub job (\S+) --follow/.exec(r.stderr)?.[1];
  assert.ok(id, r.stderr);
  const now = await fleet.hubCli(['job', id]);
  assert.equal(now.code, 9, now.stderr);
  assert.match(now.stderr, /queued/);
  assert.match(now.stderr, new RegExp(`not finished yet: \`bento-hub job ${id} --follow\` follows it`));
  const f = spawnDaemon('job-follow', process.execPath, [HUB_BIN, 'job', id, '--follow', '--dir', fleet.fleetDir]);
  try {
    await sleep(1000);
    assert.equal(f.child.exitCode, null, 'still waiting for the host');
    await startAgent('late');
    const code = await raceTimeout(f.exited, 60_000, -1);
    assert.equal(code, 0, f.output());
    assert.match(f.output(), new RegExp(`job ${id} started on late`));
    assert.match(f.output(), /^line 2999$/m);
    assert.match(f.output(), /\[bento\] success \(exit 0\)/);
  } finally {
    await f.stop();
  }
});

test('exit statuses: a failed job 1 (JOB_FAILED), an unknown id 5 (UNKNOWN_JOB), not a job id 2 (USAGE)', async () => {
  const id = await start('fail2');
  await waitFor('the job to end', async () => (await fleet.hubCli(['job', id])).code !== 9, 30_000, 200);
  const r = await fleet.hubCli(['job', id]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /failure \(exit 3\)/);
  assert.match(r.stderr, /it broke/);
  const unknown = await fleet.hubCli(['job', 'nosuchjob1']);
  assert.equal(unknown.code, 5);
  assert.match(unknown.stderr, /no job "nosuchjob1".*\[UNKNOWN_JOB\]/);
  const bad = await fleet.hubCli(['job', 'a/b']);
  assert.equal(bad.code, 2);
});
