// A `--prebuilt --queue` trigger for an offline host whose agent turns out to
// be too old to understand storePath (no "prebuilt" capability in its hello):
// the hub must not send it a job it would run as a plain nixos-rebuild. The
// queued job fails with the reason, and no job.start reaches the agent.
// Real hub, real `bento-hub build` (its build command prints a store path, as
// nixos-rebuild build does); the old agent is a hand-driven ssh2 client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { waitFor, sleep } from '../helpers/proc.js';
import { rawAgent, helloFor } from '../helpers/raw-agent.js';
import { durableJobs } from '../helpers/state.js';

const STORE_PATH = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-old1-1';
let fleet: TestFleet;

before(async () => {
  fleet = await TestFleet.create({
    heartbeatMs: 1000,
    hubSettings: { publish: { buildCommand: ['/bin/sh', '-c', `echo "building $1"; echo ${STORE_PATH}`, 'build'] } },
  });
  await fleet.addHost('old1');
  await mkdir(path.join(fleet.fleetDir, 'hosts', 'old1'), { recursive: true });
  await writeFile(path.join(fleet.fleetDir, 'hosts', 'old1', 'configuration.nix'), '{ ... }: { }\n');
  await fleet.startHub();
});
after(async () => { await fleet?.close(); });

test('a queued prebuilt job is failed, not sent, when the host comes back with an agent without the capability', async () => {
  const b = await fleet.hubCli(['build', 'old1', '--json'], 60_000);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  assert.ok(b.stdout.includes(STORE_PATH), 'the build recorded the store path');

  const queued = fleet.hubCli(['trigger', 'old1', '--prebuilt', '--queue', '--wait', '--json'], 30_000);
  await waitFor('job queued', async () => (await durableJobs(fleet.fleetDir)).some((j) => j.host === 'old1' && j.state === 'queued'), 10_000);

  const old = await rawAgent({ port: fleet.sshPort, name: 'old1', keyPath: fleet.keys.get('old1')!.keyPath });
  try {
    old.channel.write(helloFor('old1', { capabilities: ['jobs', 'reverse-forward'] }));
    const r = await queued;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const end = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['ev'] === 'end');
    assert.equal(end?.['outcome'], 'failure');
    assert.match(String(end?.['reason']), /does not support prebuilt switches .*UNSUPPORTED/);
    await sleep(500);
    assert.match(old.received(), /"type":"welcome"/);
    assert.doesNotMatch(old.received(), /job\.start/, 'nothing was sent to the old agent');
    const rec = (await durableJobs(fleet.fleetDir)).find((j) => j.host === 'old1');
    assert.equal(rec?.state, 'failure');
    assert.equal(rec?.storePath, STORE_PATH);
  } finally {
    old.end();
  }
});
