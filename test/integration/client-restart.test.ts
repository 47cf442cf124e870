// A switch that upgrades the agent (its package link changes, as a NixOS
// switch re-points /etc/bento/package) makes the agent exit 0 right after the
// job, once the hub has acknowledged the result, for systemd to start the new
// program. A job that changes nothing leaves it running. Real hub, real agent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { waitFor, sleep, type Daemon, raceTimeout } from '../helpers/proc.js';
import { adminStatus } from '../helpers/admin-query.js';

let fleet: TestFleet;
let agent: Daemon;
let link = '';

before(async () => {
  fleet = await TestFleet.create({ heartbeatMs: 1000 });
  await fleet.addHost('web1');
  await fleet.startHub();
  for (const v of ['pkg-v1', 'pkg-v2']) await mkdir(path.join(fleet.dir, v));
  link = path.join(fleet.dir, 'package');
  await symlink('pkg-v1', link);
  // The "rebuild" re-points the package link when asked to (its first argument is the action).
  const rebuild = ['/bin/sh', '-c', `echo "activating $1"; if [ "$1" = switch ]; then ln -sfn pkg-v2 '${link}.new' && mv -T '${link}.new' '${link}'; fi; sleep 0.5; echo done`, 'rebuild'];
  const cfg = await fleet.agentConfig('web1', { rebuildCommand: rebuild, restartOnChange: [link, path.join(fleet.dir, 'web1.json')] });
  agent = fleet.startAgent('web1', cfg);
  await fleet.waitConnected(['web1']);
});
after(async () => { await fleet?.close(); });

test('a job that changes nothing leaves the agent running', async () => {
  const r = await fleet.hubCli(['trigger', 'web1', '--action', 'test']);
  assert.equal(r.code, 0, r.stderr);
  await sleep(1500);
  assert.equal(agent.child.exitCode, null, 'still running');
  assert.doesNotMatch(agent.output(), /restarting to apply/);
});

test('a switch that re-points the agent package: result acknowledged, then the agent exits 0 to be restarted', async () => {
  const r = await fleet.hubCli(['trigger', 'web1', '--action', 'switch']);
  assert.equal(r.code, 0, r.stderr);
  const code = await raceTimeout(agent.exited, 15_000, 'timeout' as const);
  assert.equal(code, 0, `agent exit: ${String(code)}\n${agent.output().slice(-2000)}`);
  assert.match(agent.output(), /the agent program or its config changed on disk; restarting when idle/);
  assert.match(agent.output(), /restarting to apply the new agent program or config/);
  assert.deepEqual(await readdir(path.join(fleet.dir, 'state-web1', 'outbox')), [], 'the hub acknowledged the result before the restart');
  // What systemd would do: start it again; it connects and serves jobs.
  agent = fleet.startAgent('web1', path.join(fleet.dir, 'web1.json'));
  await fleet.waitConnected(['web1']);
  await waitFor('hub shows the switch as success', async () => (await adminStatus(fleet.fleetDir)).some((h) => h.lastJob?.state === 'success'), 10_000);
  const again = await fleet.hubCli(['trigger', 'web1', '--action', 'test']);
  assert.equal(again.code, 0, again.stderr);
  await sleep(1000);
  assert.equal(agent.child.exitCode, null, 'the restarted agent took the new state as its baseline');
});
