// postSwitchCommand (issue 14), for real: a real hub and agent, the
// nixos-rebuild stand-in building and activating real fixture systems with a
// real profile, and a real shell script as the command. It must run once per
// switch/boot/test job with the job's final facts in BENTO_* variables (also
// after a failed or rolled-back switch), never for build, put its output in
// the job's log, and never change the job's outcome, even when it fails or
// hangs past its timeout.
import assert from 'node:assert/strict';
import { readFile, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TestFleet } from '../helpers/fleet.js';
import {
  currentSystemPath, listGenerations, makeNixEnv, nixAvailable, nixUnavailableReason, profilePath,
  runStandin, writeFixtureConfig, type FixtureOptions, type NixEnv,
} from '../fixtures/nix.js';
import { trigger } from './rollback-helpers.js';

const skip = nixAvailable() ? false : nixUnavailableReason();
let fleet: TestFleet;
let nix: NixEnv;
let configFile = '';
let record = '';
let mode = '';

before(async () => {
  if (skip) return;
  fleet = await TestFleet.create();
  await fleet.startHub();
  await fleet.addHost('hook1');
  nix = await makeNixEnv(path.join(fleet.dir, 'nix-hook1'));
  configFile = path.join(fleet.dir, 'hook1-configuration.nix');
  record = path.join(fleet.dir, 'post-switch.jsonl');
  mode = path.join(fleet.dir, 'post-switch.mode');
  // The command: records its BENTO_* environment, prints a line, then does what `mode` says.
  const script = path.join(fleet.dir, 'post-switch.sh');
  await writeFile(script, `#!/bin/sh
env | grep '^BENTO_\\(HOST\\|JOB_ID\\|ACTION\\|OUTCOME\\|EXIT_CODE\\|REASON\\|GENERATION\\|STORE_PATH\\|PREVIOUS_STORE_PATH\\)=' | sort | tr '\\n' '\\t' >> ${record}
echo >> ${record}
echo "notified: $BENTO_HOST $BENTO_ACTION $BENTO_OUTCOME"
case "$(cat ${mode} 2>/dev/null)" in
  fail) echo "notifier down" >&2; exit 3 ;;
  hang) exec sleep 60 ;;
esac
`);
  await chmod(script, 0o755);
  await setConfig({ label: 'installed' });
  const r = await runStandin(nix, ['switch', '-I', `nixos-config=${configFile}`]);
  assert.equal(r.code, 0, r.stderr);
  const agentConfig = await fleet.agentConfig('hook1', {
    configuration: configFile, rebuildEnv: nix.env, currentSystem: nix.currentSystem, systemProfile: nix.profile,
    rollbackTimeoutMs: 10_000, postSwitchCommand: [script], postSwitchTimeoutMs: 1500,
  });
  fleet.startAgent('hook1', agentConfig);
  await fleet.waitConnected(['hook1']);
});
after(async () => { await fleet?.close(); });

const setConfig = (o: Omit<FixtureOptions, 'host'>): Promise<void> => writeFixtureConfig(configFile, { host: 'hook1', ...o });
const output = (r: Awaited<ReturnType<typeof trigger>>): string => r.events.filter((e) => e['ev'] === 'output').map((e) => String(e['data'])).join('\n');
async function runs(): Promise<Array<Record<string, string>>> {
  const text = await readFile(record, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => Object.fromEntries(l.split('\t').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
}

test('after a switch: BENTO_* facts of the job, its output in the job log', { skip }, async () => {
  const previous = await currentSystemPath(nix);
  await setConfig({ label: 'v2' });
  const r = await trigger(fleet, 'hook1');
  assert.equal(r.end?.['outcome'], 'success', JSON.stringify(r.end));
  const now = await currentSystemPath(nix);
  assert.match(now ?? '', /-nixos-system-hook1-v2$/);
  const all = await runs();
  assert.equal(all.length, 1);
  assert.deepEqual(all[0], {
    BENTO_ACTION: 'switch', BENTO_EXIT_CODE: '0', BENTO_GENERATION: String((await listGenerations(nix)).at(-1)), BENTO_HOST: 'hook1',
    BENTO_JOB_ID: String(r.end?.['jobId']), BENTO_OUTCOME: 'success', BENTO_PREVIOUS_STORE_PATH: previous!, BENTO_REASON: '', BENTO_STORE_PATH: now!,
  });
  const out = output(r);
  assert.match(out, /post-switch: running \S+post-switch\.sh \(outcome success\)/);
  assert.match(out, /post-switch: notified: hook1 switch success/);
  assert.match(out, /post-switch: done in \d+ ms/);
});

test('boot reports the system set to boot; build runs no command', { skip }, async () => {
  const running = await currentSystemPath(nix);
  await setConfig({ label: 'v3' });
  const b = await trigger(fleet, 'hook1', 'boot');
  assert.equal(b.end?.['outcome'], 'success');
  const last = (await runs()).at(-1)!;
  assert.equal(last['BENTO_ACTION'], 'boot');
  assert.equal(last['BENTO_STORE_PATH'], await profilePath(nix));
  assert.match(last['BENTO_STORE_PATH'] ?? '', /-v3$/);
  assert.equal(last['BENTO_PREVIOUS_STORE_PATH'], running);
  const before = (await runs()).length;
  const build = await trigger(fleet, 'hook1', 'build');
  assert.equal(build.end?.['outcome'], 'success');
  assert.equal((await runs()).length, before, 'build changes nothing: no post-switch run');
  assert.doesNotMatch(output(build), /post-switch/);
});

test('after a failed build and after a switch the guard rolled back: the final outcome and reason', { skip }, async () => {
  const running = await currentSystemPath(nix);
  await setConfig({ label: 'broken', buildFails: true });
  const f = await trigger(fleet, 'hook1');
  assert.equal(f.end?.['outcome'], 'failure');
  let last = (await runs()).at(-1)!;
  assert.deepEqual([last['BENTO_OUTCOME'], last['BENTO_STORE_PATH'], last['BENTO_EXIT_CODE']], ['failure', running, String(f.end?.['exitCode'])]);
  assert.match(last['BENTO_REASON'] ?? '', /exited with status/);
  // switch-to-configuration fails after activating: the guard puts the previous system back at once.
  await setConfig({ label: 'late-fail', switchFails: 'after-activation' });
  const rb = await trigger(fleet, 'hook1');
  assert.equal(rb.end?.['outcome'], 'rolled-back', JSON.stringify(rb.end));
  last = (await runs()).at(-1)!;
  assert.equal(last['BENTO_OUTCOME'], 'rolled-back', 'the hook runs after the guard\'s verdict');
  assert.equal(last['BENTO_STORE_PATH'], running, 'the system the job left active');
  assert.match(last['BENTO_REASON'] ?? '', /^rolled back: /);
});

test('a failing or hanging command is reported in the log and never changes the outcome', { skip }, async () => {
  await writeFile(mode, 'fail');
  await setConfig({ label: 'v4' });
  const f = await trigger(fleet, 'hook1');
  assert.equal(f.end?.['outcome'], 'success');
  assert.match(output(f), /post-switch: notifier down/);
  assert.match(output(f), /post-switch: post-switch\.sh exited with status 3 \(the job's outcome stays success\)/);
  await writeFile(mode, 'hang');
  await setConfig({ label: 'v5' });
  const t0 = Date.now();
  const h = await trigger(fleet, 'hook1');
  const ms = Date.now() - t0;
  assert.equal(h.end?.['outcome'], 'success');
  assert.match(output(h), /post-switch: post-switch\.sh did not finish within 1500 ms and was stopped/);
  assert.ok(ms < 30_000, `the job ended ${ms} ms after the trigger: the hang was cut at the timeout, not after the command's 60 s`);
  await writeFile(mode, '');
});
