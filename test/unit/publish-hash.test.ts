// Unit tests for the publish/pull building blocks: the content hash, the
// jail's virtual path parser, log names, and the settings validators.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hashEntries, hashTree, TreeError } from '../../common/platform/tree-hash.js';
import { parseVirtual, realpathVirtual, LOG_NAME_RE } from '../../hub/sftp/vpath.js';
import { parseLogName } from '../../hub/publish/logs.js';
import { logName } from '../../client/pull/plugin.js';
import { validatePublishSettings, DEFAULT_PUBLISH_SETTINGS } from '../../hub/publish/settings.js';
import { validateHubConfig } from '../../hub/fleet/hub-config.js';
import { validateClientConfig } from '../../client/config.js';
import { buildArgv } from '../../hub/publish/build.js';

async function tree(files: Record<string, string | { text: string; mode: number }>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bento-hash-'));
  for (const [rel, v] of Object.entries(files)) {
    const p = path.join(dir, rel);
    await mkdir(path.dirname(p), { recursive: true });
    if (rel.endsWith('/')) continue;
    await writeFile(p, typeof v === 'string' ? v : v.text);
    await chmod(p, typeof v === 'string' ? 0o644 : v.mode);
  }
  return dir;
}

test('tree hash: paths, exec bits and contents count; order, times, owners and other mode bits do not', async () => {
  const a = await tree({ 'configuration.nix': '{ }\n', 'sub/x.nix': 'x', 'run.sh': { text: '#!/bin/sh\n', mode: 0o755 } });
  const b = await tree({ 'run.sh': { text: '#!/bin/sh\n', mode: 0o700 }, 'sub/x.nix': 'x', 'configuration.nix': '{ }\n' });
  try {
    await chmod(path.join(b, 'configuration.nix'), 0o600);
    await utimes(path.join(b, 'sub', 'x.nix'), 1, 1);
    const ha = await hashTree(a);
    assert.equal(ha.hash, (await hashTree(b)).hash);
    assert.match(ha.hash, /^[0-9a-f]{64}$/);
    assert.equal(ha.files, 3);
    await chmod(path.join(b, 'run.sh'), 0o644);
    const noExec = (await hashTree(b)).hash;
    assert.notEqual(noExec, ha.hash, 'the exec bit is part of the hash');
    await chmod(path.join(b, 'run.sh'), 0o755);
    await writeFile(path.join(b, 'sub', 'x.nix'), 'y');
    assert.notEqual((await hashTree(b)).hash, ha.hash, 'contents are part of the hash');
    await writeFile(path.join(b, 'sub', 'x.nix'), 'x');
    await mkdir(path.join(b, 'empty'));
    assert.notEqual((await hashTree(b)).hash, ha.hash, 'an empty directory is part of the hash');
  } finally {
    await rm(a, { recursive: true });
    await rm(b, { recursive: true });
  }
});

test('tree hash: no file name can forge an entry; symlinks are refused', async () => {
  const x = hashEntries([{ path: 'a', type: 'file', exec: false, size: 1, sha256: 'ab' }]);
  const forged = hashEntries([{ path: 'a"\nf - 1 ab "b', type: 'file', exec: false, size: 1, sha256: 'ab' }]);
  assert.notEqual(x, forged);
  const d = await tree({ 'a.nix': '' });
  try {
    await symlink('/etc/passwd', path.join(d, 'link'));
    await assert.rejects(hashTree(d), (e: unknown) => e instanceof TreeError && e.relPath === 'link');
  } finally {
    await rm(d, { recursive: true });
  }
});

test('jail paths: only the virtual namespace exists; ".." and NUL are refused; REALPATH clamps at /', () => {
  assert.deepEqual(parseVirtual('/'), { kind: 'root' });
  assert.deepEqual(parseVirtual('.'), { kind: 'root' });
  assert.deepEqual(parseVirtual('//config//sub/./x.nix'), { kind: 'config', rel: ['sub', 'x.nix'] });
  assert.deepEqual(parseVirtual('logs/a.log'), { kind: 'log', name: 'a.log' });
  assert.deepEqual(parseVirtual('version.json'), { kind: 'meta', name: 'version.json' });
  for (const p of ['../db1', 'config/../../x', '/..', 'logs/..', 'config/a/..']) assert.equal(parseVirtual(p).kind, 'denied', p);
  assert.equal(parseVirtual('config/\0x').kind, 'denied');
  assert.equal(parseVirtual('x'.repeat(5000)).kind, 'denied');
  for (const p of ['/etc/passwd', 'jails/db1', '..%2f', '\u2024\u2024/x', '\uff0e\uff0e', '..\\db1', 'logs/a/b', 'version.json/x']) {
    assert.equal(parseVirtual(p).kind, 'missing', p);
  }
  assert.equal(realpathVirtual('../../..'), '/');
  assert.equal(realpathVirtual('config/../logs/.'), '/logs');
  assert.equal(realpathVirtual('a\0b'), null);
  assert.ok(LOG_NAME_RE.test('20240101-000000_abc-nixos-system-web1_g3_success.log.gz'));
  for (const bad of ['.hidden', '../x', 'a/b', 'a b', '', 'x'.repeat(201)]) assert.ok(!LOG_NAME_RE.test(bad), bad);
});

test('log names: upstream-compatible, with seconds and generation, parsed back', () => {
  const at = new Date('2024-03-05T06:07:08Z');
  const name = logName(at, '/nix/store/abcdefghijklmnopqrstuvwxyz012345-nixos-system-web1-24.05', 42, { outcome: 'success' });
  assert.equal(name, '20240305-060708_abcdefghijklmnopqrstuvwxyz012345-nixos-system-web1-24.05_g42_success.log.gz');
  assert.ok(LOG_NAME_RE.test(name));
  assert.deepEqual(parseLogName(name), {
    name, time: '2024-03-05T06:07:08Z', system: 'abcdefghijklmnopqrstuvwxyz012345-nixos-system-web1-24.05', generation: 42, outcome: 'success',
  });
  assert.match(logName(at, null, null, { outcome: 'rolled-back' }), /^20240305-060708_unknown_rollback\.log\.gz$/);
  assert.match(logName(at, null, 1, { outcome: 'success' }, 'autoupdate'), /_g1_autoupdate\.log\.gz$/);
  assert.match(logName(at, null, 1, { outcome: 'interrupted' }), /_failure\.log\.gz$/);
  // Upstream's own names (minutes only, no generation) parse too.
  assert.deepEqual(parseLogName('20231224-1830_xyz-nixos-system-a_failure.log.gz').outcome, 'failure');
  assert.equal(parseLogName('20231224-1830_xyz-nixos-system-a_failure.log.gz').time, '2023-12-24T18:30:00Z');
  assert.equal(parseLogName('notes.txt').time, null);
});

test('settings: hub.json "publish" and the agent\'s pull keys are validated with clear messages', () => {
  assert.deepEqual(validatePublishSettings(undefined), DEFAULT_PUBLISH_SETTINGS);
  assert.equal(validateHubConfig({ publish: { buildJobs: 2 } }).publish?.buildJobs, 2);
  assert.equal(validateHubConfig({}).publish, undefined, 'absent means defaults');
  assert.throws(() => validateHubConfig({ publish: { buildJob: 2 } }), /"publish": unknown setting "buildJob"/);
  assert.throws(() => validatePublishSettings({ buildCommand: [] }), /buildCommand/);
  assert.throws(() => validatePublishSettings({ logQuotaBytes: 5 }), /logQuotaBytes/);
  const base = { name: 'web1', hub: 'ssh://hub:2222', hubFingerprint: `SHA256:${'A'.repeat(43)}`, stateDir: '/var/lib/bc' };
  const c = validateClientConfig(base);
  assert.equal(c.pull.configDir, '/var/lib/bc/config');
  assert.equal(c.pull.autoApply, true);
  assert.equal(c.pull.pullIntervalMs, 900_000);
  assert.equal(c.pull.pullJitterMs, 180_000);
  assert.equal(c.pull.pullFrom, null);
  assert.throws(() => validateClientConfig({ ...base, configDir: 'rel' }), /"configDir" must be an absolute path/);
  assert.throws(() => validateClientConfig({ ...base, pullIntervalMs: 5 }), /pullIntervalMs/);
  assert.throws(() => validateClientConfig({ ...base, autoApplyAction: 'reboot' }), /autoApplyAction/);
  assert.throws(() => validateClientConfig({ ...base, pullFrom: { url: 'ssh://old:22' } }), /hostFingerprint/);
  const pf = validateClientConfig({ ...base, pullFrom: { url: 'ssh://old:22', hostFingerprint: `SHA256:${'B'.repeat(43)}` } }).pull.pullFrom!;
  assert.equal(pf.user, 'web1');
  assert.equal(pf.endpoint.port, 22);
});

test('build argv mirrors what the host runs: -I nixos-config=DIR/configuration.nix or --flake DIR#HOST', () => {
  const s = { ...DEFAULT_PUBLISH_SETTINGS, buildCommand: ['nixos-rebuild'] };
  assert.deepEqual(buildArgv(s, { kind: 'configuration', host: 'web1' }, '/t', false), ['nixos-rebuild', 'build', '-I', 'nixos-config=/t/configuration.nix']);
  assert.deepEqual(buildArgv(s, { kind: 'flake', host: 'app1' }, '/t', true), ['nixos-rebuild', 'dry-build', '--flake', '/t#app1']);
});
