// `bento-hub diff HOST` on two real store paths (issue 9): the host's running
// system (its hello `system` in state/hosts/NAME.json) against the hub's built
// one (state/builds/NAME.json). Real `nix store diff-closures`; nvd is not
// installed here, so its selection is checked with a stand-in on PATH.
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { HUB_BIN, TestFleet, runCli } from '../helpers/fleet.js';
import { buildFixture, makeNixEnv, nixAvailable, nixUnavailableReason, writeFixtureConfig, type NixEnv } from '../fixtures/nix.js';

const skip = !nixAvailable() && nixUnavailableReason();
let fleet: TestFleet | null = null;
let env: NixEnv;
let oldSys = '';
let newSys = '';
let sameKernel = '';

async function state(host: string, running: string, built: string): Promise<void> {
  const st = path.join(fleet!.fleetDir, 'state');
  await mkdir(path.join(st, 'hosts'), { recursive: true });
  await mkdir(path.join(st, 'builds'), { recursive: true });
  await writeFile(path.join(st, 'hosts', `${host}.json`), JSON.stringify({ name: host, system: running, lastConnectedAt: null, lastSeenAt: null, agentVersion: null, generation: 1, configHash: null, carrier: null, remoteAddress: null }));
  await writeFile(path.join(st, 'builds', `${host}.json`), JSON.stringify({ host, hash: 'x', dry: false, ok: true, exitCode: 0, durationMs: 1, at: new Date().toISOString(), storePath: built, tail: '', log: '' }));
}

function hub(args: string[], extraEnv: Record<string, string> = {}) {
  return runCli(HUB_BIN, [...args, '--dir', fleet!.fleetDir], { env: { ...process.env, ...env.env, ...extraEnv } });
}

before(async () => {
  if (skip) return;
  fleet = await TestFleet.create();
  env = await makeNixEnv(path.join(fleet.dir, 'nix'));
  const build = async (label: string, kernelVersion: string): Promise<string> => {
    const f = path.join(env.root, `${label}.nix`);
    await writeFixtureConfig(f, { host: 'web1', label, kernelVersion });
    return buildFixture(f, env);
  };
  oldSys = await build('diff-old', '6.1.0-bento');
  newSys = await build('diff-new', '6.6.0-bento');
  sameKernel = await build('diff-same', '6.1.0-bento');
});
after(async () => { await fleet?.close(); });

test('diff shows the kernel and initrd version change between the running and the built system', { skip }, async () => {
  await state('web1', oldSys, newSys);
  const r = await hub(['diff', 'web1', '--tool', 'nix']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith(`web1: ${oldSys} -> ${newSys}\n`), r.stdout);
  assert.match(r.stdout, /^linux: 6\.1\.0 → 6\.6\.0$/m);
  assert.match(r.stdout, /^initrd-linux: 6\.1\.0 → 6\.6\.0$/m);
  process.stderr.write(`# diff output:\n${r.stdout.replace(/^/gm, '#   ')}\n`);
});

test('same kernel: diff-closures lists no kernel change; same path: no changes', { skip }, async () => {
  await state('web1', oldSys, sameKernel);
  const r = await hub(['diff', 'web1']);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /linux: /);
  await state('web1', newSys, newSys);
  const same = await hub(['diff', 'web1']);
  assert.match(same.stdout, /no changes: the host already runs the built system/);
});

test('nvd is preferred when it is on PATH', { skip }, async () => {
  const bin = path.join(fleet!.dir, 'fakebin');
  await mkdir(bin, { recursive: true });
  const rec = path.join(fleet!.dir, 'nvd-args');
  await writeFile(path.join(bin, 'nvd'), `#!/bin/sh\necho "$@" > "${rec}"\necho "<<< $2"\necho ">>> $3"\n`);
  await chmod(path.join(bin, 'nvd'), 0o755);
  await state('web1', oldSys, newSys);
  const r = await hub(['diff', 'web1'], { PATH: `${bin}:${env.env['PATH']}` });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await readFile(rec, 'utf8')).trim(), `diff ${oldSys} ${newSys}`);
});

test('a host with no running system or no build is reported and exits 1', { skip }, async () => {
  const r = await hub(['diff', 'nosuch']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /running system is unknown/);
  await state('web2', oldSys, '/nix/store/00000000000000000000000000000000-missing');
  const m = await hub(['diff', 'web2']);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /not in the hub's Nix store/);
});
