// The admin CLI against a running hub and real agents: `trigger --queue`
// returns once the job is queued (waiting for the host only with --wait, and
// then saying for whom), a fan-out's live summary line and aligned output on
// a real terminal (and none of it in a pipe or with --json), and `proxy` to a
// port nothing listens on reporting the host's own error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet, HUB_BIN } from '../helpers/fleet.js';
import { freePort, spawnDaemon, waitFor } from '../helpers/proc.js';
import { runInTty, screenLines, stripEscapes } from '../helpers/tty.js';
import type { HostStatus } from '../../common/protocol/admin.js';

let fleet: TestFleet;
let rebuild: string;

before(async () => {
  fleet = await TestFleet.create();
  // A rebuild that prints a few lines over ~1 s, and fails for a host named fail*.
  rebuild = path.join(fleet.dir, 'rebuild.sh');
  await writeFile(rebuild, [
    '#!/bin/sh',
    'for i in 1 2 3; do echo "$BENTO_HOST step $i of $1"; sleep 0.3; done',
    'case "$BENTO_HOST" in fail*) echo "$BENTO_HOST: error: it broke" >&2; exit 1;; esac',
    'echo "$BENTO_HOST done"',
  ].join('\n'), { mode: 0o755 });
  // late connects only in the --wait test; gone never does.
  await fleet.addHosts(['a1', 'web10', 'fail3', 'late', 'gone']);
  await fleet.startHub();
  for (const name of ['a1', 'web10', 'fail3']) await startAgent(name);
  await fleet.waitConnected(['a1', 'web10', 'fail3']);
});
after(async () => { await fleet?.close(); });

async function startAgent(name: string, extra: Record<string, unknown> = {}): Promise<void> {
  fleet.startAgent(name, await fleet.agentConfig(name, { rebuildCommand: [rebuild], rebuildEnv: { BENTO_HOST: name }, ...extra }));
}

async function statusOf(name: string): Promise<HostStatus> {
  const r = await fleet.hubCli(['status', name, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const hosts = (JSON.parse(r.stdout) as { hosts: HostStatus[] }).hosts;
  assert.deepEqual(hosts.map((h) => h.name), [name], '`status HOST` shows that host only');
  return hosts[0]!;
}

test('trigger --queue for an offline host returns once queued, with the job id and where to see it', async () => {
  const t0 = Date.now();
  const r = await fleet.hubCli(['trigger', 'late', '--queue'], 20_000);
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  assert.ok(Date.now() - t0 < 15_000, 'did not wait for the host');
  const m = /^late: switch job (\S+) queued; late is not connected, the job runs when it connects \(follow with: bento-hub job \1 --follow\)$/m.exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.match(r.stdout, /^late\s+queued\s+-\s+-\s+queued: runs when late connects$/m);
  const st = await statusOf('late');
  assert.equal(st.queuedJob?.id, m[1], 'status HOST shows the queued job');
  const unknown = await fleet.hubCli(['status', 'late', 'nosuch']);
  assert.equal(unknown.code, 5);
  assert.match(unknown.stderr, /no host "nosuch" in the registry.*\[UNKNOWN_HOST\]/);
  // --json says the same in its summary.
  const j = await fleet.hubCli(['trigger', 'late', '--queue', '--json'], 20_000);
  assert.equal(j.code, 0, j.stderr);
  const lines = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.find((l) => l['ev'] === 'accepted')?.['offline'], true);
  assert.deepEqual((lines.at(-1)!['summary'] as Array<Record<string, unknown>>).map((s) => [s['host'], s['outcome'], s['jobId']]), [['late', 'queued', m[1]]], 'coalesced into the queued job');
  // `trigger --all` never blocks on an offline host: one without a job is refused, one with a
  // queued job gets this trigger coalesced into it (not followed); the connected ones run.
  const all = await fleet.hubCli(['trigger', '--all'], 30_000);
  assert.equal(all.code, 1, `fail3 failed: ${all.stderr}`);
  assert.match(all.stdout, /^gone\s+rejected\s.*HOST_OFFLINE/m);
  assert.match(all.stdout, /^late\s+queued\s/m);
  assert.match(all.stdout, /^a1\s+success/m);
  assert.match(all.stdout, /^fail3\s+failure\s+1\s/m);
});

test('trigger --queue --wait says which host it waits for, then follows its job to the end', async () => {
  // The job queued by the previous test (or a new one) runs when "late" connects.
  const cmd = spawnDaemon('trigger-wait', process.execPath, [HUB_BIN, 'trigger', 'late', '--queue', '--wait', '--dir', fleet.fleetDir]);
  try {
    await waitFor('the waiting notice', () => /late: switch job \S+ (queued|coalesced); waiting for late to connect \(Ctrl-C stops waiting; the job stays queued\)/.test(cmd.output()), 15_000);
    assert.equal(cmd.child.exitCode, null, 'still waiting');
    await startAgent('late');
    await waitFor('trigger --wait to finish', () => cmd.child.exitCode !== null, 30_000, 100);
    const code = await cmd.exited;
    assert.equal(code, 0, cmd.output());
    assert.match(cmd.output(), /late done/);
    assert.match(cmd.output(), /^late\s+success\s+0\s/m);
  } finally {
    await cmd.stop();
  }
});

test('a fan-out on a terminal: a live summary line, host prefixes of one width, an aligned table', async () => {
  const r = await runInTty([process.execPath, HUB_BIN, 'trigger', 'a1', 'web10', 'fail3', '--dir', fleet.fleetDir], { timeoutMs: 60_000 });
  assert.equal(r.code, 1, stripEscapes(r.output));
  // The summary line, redrawn in place (after \r, erased with ESC[K).
  assert.match(r.output, /\r\x1b\[K\x1b\[2m[0-3]\/3 done, [01] failed, [0-3] running/);
  assert.match(r.output, /3\/3 done, 1 failed, 0 running/);
  const lines = screenLines(r.output);
  // Every output line's host prefix has the width of the longest name ("web10").
  const prefixed = lines.filter((l) => / \| /.test(l) && /step \d of switch/.test(l));
  assert.ok(prefixed.length >= 9, lines.join('\n'));
  for (const l of prefixed) assert.match(l, /^(a1   |web10|fail3) \| \S/, JSON.stringify(l));
  // The summary table: coloured cells padded on their visible width, so every column starts where its header does.
  const head = lines.findIndex((l) => /^HOST\s+OUTCOME\s+EXIT\s+DURATION\s+NOTE/.test(l));
  assert.ok(head >= 0, lines.join('\n'));
  const exitAt = lines[head]!.indexOf('EXIT');
  for (const row of lines.slice(head + 1, head + 4)) assert.match(row.slice(exitAt), /^[01]\s/, `EXIT column misaligned:\n${lines[head]}\n${row}`);
  assert.match(r.output, /\x1b\[32msuccess/, 'colours are on');
  // The summary line never stays on the screen once the table is printed.
  assert.ok(!lines.slice(head).some((l) => / done, /.test(l)), lines.slice(head).join('\n'));
});

test('no summary line in a pipe or with --json', async () => {
  const plain = await fleet.hubCli(['trigger', 'a1', 'web10'], 60_000);
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stdout + plain.stderr, /done, |\r|\x1b/);
  assert.match(plain.stdout, /^a1    \| a1 step 1 of switch$/m);
  const json = await fleet.hubCli(['trigger', 'a1', 'web10', '--json'], 60_000);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(json.stderr, '');
  for (const l of json.stdout.trim().split('\n')) JSON.parse(l);
  // With --json on a terminal too.
  const tty = await runInTty([process.execPath, HUB_BIN, 'trigger', 'a1', 'web10', '--json', '--dir', fleet.fleetDir], { timeoutMs: 60_000 });
  assert.equal(tty.code, 0, tty.output);
  assert.doesNotMatch(tty.output, /done, |\x1b/);
});

test('proxy to a port the host allows but nothing listens on reports the host\'s error, not FORBIDDEN', async () => {
  const closed = await freePort();
  await fleet.addHost('px1');
  await startAgent('px1', { allowForwardPorts: [22, closed] });
  await fleet.waitConnected(['px1']);
  const r = await fleet.hubCli(['proxy', 'px1', String(closed)]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^bento-hub proxy: host "px1" could not connect to its port ${closed}: connection refused by 127\\.0\\.0\\.1:${closed} \\(nothing listens on that port on the host\\) \\[FORWARD_FAILED\\]$`, 'm'));
  assert.doesNotMatch(r.stderr, /FORBIDDEN/);
  // A port it does not allow is still FORBIDDEN.
  const other = await fleet.hubCli(['proxy', 'px1', '2']);
  assert.match(other.stderr, /does not offer port 2.*\[FORBIDDEN\]/);
});
