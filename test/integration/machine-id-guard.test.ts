// The machine-id guard (issue 14), for real: a real hub and agent, the
// nixos-rebuild stand-in building real fixture systems with real Nix, a real
// system profile. Each system pins a machine id the way the NixOS module does
// (SYSTEM/etc/bento/machine-id); the agent's config pins this "host"
// (machineId) and reads its id from a file standing in for /etc/machine-id.
// A system pinned to another machine, or to none, must be refused before the
// profile or the running system changes, with MACHINE_ID_MISMATCH.
// The prebuilt path (trigger --prebuilt) is checked on runPrebuilt itself,
// with a real realised system and a real profile.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TestFleet } from '../helpers/fleet.js';
import {
  buildFixture, currentSystemPath, listGenerations, makeNixEnv, nixAvailable, nixUnavailableReason, profilePath,
  readActivations, runStandin, writeFixtureConfig, type FixtureOptions, type NixEnv,
} from '../fixtures/nix.js';
import { trigger } from './rollback-helpers.js';
import { checkSystemPin } from '../../client/jobs/machine-id.js';
import { runPrebuilt } from '../../client/jobs/prebuilt.js';

const skip = nixAvailable() ? false : nixUnavailableReason();
const HERE = randomBytes(16).toString('hex');
const OTHER = randomBytes(16).toString('hex');
let fleet: TestFleet;
let nix: NixEnv;
let configFile = '';
let idFile = '';

before(async () => {
  if (skip) return;
  fleet = await TestFleet.create();
  await fleet.startHub();
  await fleet.addHost('pin1');
  nix = await makeNixEnv(path.join(fleet.dir, 'nix-pin1'));
  configFile = path.join(fleet.dir, 'pin1-configuration.nix');
  idFile = path.join(fleet.dir, 'machine-id');
  await writeFile(idFile, `${HERE}\n`);
  await setConfig({ label: 'installed', machineId: HERE });
  const r = await runStandin(nix, ['switch', '-I', `nixos-config=${configFile}`]);
  assert.equal(r.code, 0, r.stderr);
  const agentConfig = await fleet.agentConfig('pin1', {
    configuration: configFile, rebuildEnv: nix.env, currentSystem: nix.currentSystem, systemProfile: nix.profile,
    rollbackTimeoutMs: 10_000, machineId: HERE, machineIdFile: idFile,
  });
  fleet.startAgent('pin1', agentConfig);
  await fleet.waitConnected(['pin1']);
});
after(async () => { await fleet?.close(); });

const setConfig = (o: Omit<FixtureOptions, 'host'>): Promise<void> => writeFixtureConfig(configFile, { host: 'pin1', ...o });
const output = (r: Awaited<ReturnType<typeof trigger>>): string => r.events.filter((e) => e['ev'] === 'output').map((e) => String(e['data'])).join('\n');
async function state(): Promise<{ current: string | null; profile: string | null; generations: number[]; activations: string[] }> {
  return { current: await currentSystemPath(nix), profile: await profilePath(nix), generations: await listGenerations(nix), activations: await readActivations(nix) };
}

test('a system pinned to this machine is built, checked, then activated: exactly the checked path', { skip }, async () => {
  await setConfig({ label: 'mine', machineId: HERE });
  const r = await trigger(fleet, 'pin1');
  assert.equal(r.end?.['outcome'], 'success', JSON.stringify(r.end));
  const out = output(r);
  assert.match(out, /machine-id guard: building first, to check the new system's pin before switch/);
  const checked = /machine-id guard: (\/nix\/store\/\S+-nixos-system-pin1-mine) is pinned to this machine; activating exactly it/.exec(out)?.[1];
  assert.ok(checked, out);
  const s = await state();
  assert.equal(s.current, checked);
  assert.equal(s.profile, checked);
  assert.equal(s.activations.at(-1), `switch ${checked}`);
});

test('a system pinned to another machine is refused before anything changes (MACHINE_ID_MISMATCH), for switch, boot and test', { skip }, async () => {
  await setConfig({ label: 'theirs', machineId: OTHER });
  for (const action of ['switch', 'boot', 'test']) {
    const before = await state();
    const r = await trigger(fleet, 'pin1', action);
    assert.notEqual(r.code, 0);
    assert.equal(r.end?.['outcome'], 'failure', `${action}: ${JSON.stringify(r.end)}`);
    const reason = String(r.end?.['reason']);
    assert.match(reason, new RegExp(`^MACHINE_ID_MISMATCH: /nix/store/\\S+-nixos-system-pin1-theirs was built for machine ${OTHER} \\(its etc/bento/machine-id\\), but this host is ${HERE} \\(${idFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\): .*; nothing was activated$`), action);
    assert.deepEqual(await state(), before, `${action}: profile, generations, running system and activations untouched`);
  }
});

test('a pinned host refuses a system that pins no machine id, and says which id to pin', { skip }, async () => {
  await setConfig({ label: 'unpinned' });
  const before = await state();
  const r = await trigger(fleet, 'pin1');
  assert.equal(r.end?.['outcome'], 'failure');
  assert.match(String(r.end?.['reason']), new RegExp(`^MACHINE_ID_MISMATCH: \\S+-nixos-system-pin1-unpinned pins no machine id .*set services\\.bento\\.client\\.machineId = "${HERE}"`));
  assert.deepEqual(await state(), before);
});

test('build changes nothing and is not checked; an unreadable /etc/machine-id refuses every switch', { skip }, async () => {
  await setConfig({ label: 'theirs-build', machineId: OTHER });
  const b = await trigger(fleet, 'pin1', 'build');
  assert.equal(b.end?.['outcome'], 'success', JSON.stringify(b.end));
  assert.doesNotMatch(output(b), /machine-id guard/);
  await setConfig({ label: 'mine-2', machineId: HERE });
  await rm(idFile);
  try {
    const before = await state();
    const r = await trigger(fleet, 'pin1');
    assert.equal(r.end?.['outcome'], 'failure');
    assert.match(String(r.end?.['reason']), /^MACHINE_ID_MISMATCH: cannot read this host's machine id from \S+machine-id \(ENOENT/);
    assert.deepEqual(await state(), before, 'fail closed');
  } finally {
    await writeFile(idFile, `${HERE}\n`);
  }
});

test('prebuilt (trigger --prebuilt path): the realised system is checked before nix-env --set', { skip }, async () => {
  const env = await makeNixEnv(path.join(fleet.dir, 'nix-prebuilt'));
  const file = path.join(env.root, 'sys.nix');
  await writeFixtureConfig(file, { host: 'pin1', label: 'prebuilt-theirs', machineId: OTHER });
  const theirs = await buildFixture(file, env);
  await writeFixtureConfig(file, { host: 'pin1', label: 'prebuilt-mine', machineId: HERE });
  const mine = await buildFixture(file, env);
  const lines: string[] = [];
  const run = (storePath: string) => runPrebuilt({
    spec: { cacheUrl: null, systemProfile: env.profile }, storePath, action: 'switch', env: { ...process.env, ...env.env } as Record<string, string>,
    onLine: (_s, l) => lines.push(l), say: (l) => lines.push(l), verify: (p) => checkSystemPin(p, idFile),
  });
  const refused = await run(theirs);
  assert.equal(refused.exitCode, 1);
  assert.match(refused.reason ?? '', new RegExp(`^MACHINE_ID_MISMATCH: ${theirs} was built for machine ${OTHER}`));
  assert.equal(await profilePath(env), null, 'the profile was not set');
  assert.equal(await currentSystemPath(env), null, 'nothing was activated');
  assert.ok(lines.some((l) => /prebuilt: realised in/.test(l)), 'refused after realising');
  const ok = await run(mine);
  assert.equal(ok.exitCode, 0, lines.join('\n'));
  assert.equal(await profilePath(env), mine);
  assert.equal(await currentSystemPath(env), mine);
});
