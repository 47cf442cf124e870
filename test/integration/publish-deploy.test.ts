// Issue 4: `bento-hub build` and `deploy` on real Nix builds of fixture host
// configurations (test/fixtures/nix: real nix-build through the declared
// nixos-rebuild stand-in). A configuration that builds is published; one that
// fails to evaluate or to build is not (unless --force). Symlinks inside the
// fleet are dereferenced, ones leaving it are refused. A deploy killed with
// SIGKILL at any moment leaves the previous version served intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet, HUB_BIN } from '../helpers/fleet.js';
import { sleep } from '../helpers/proc.js';
import { makeNixEnv, nixAvailable, nixUnavailableReason, writeFixtureConfig, writeFlakeLikeDir } from '../fixtures/nix.js';
import { hashTree } from '../../common/platform/tree-hash.js';
import { readPublished } from '../../hub/publish/published.js';

const skip = nixAvailable() ? false : nixUnavailableReason();
let fleet: TestFleet;
let hosts: string;

interface Row { host: string; result: string; hash: string | null; previous: string | null; message: string; build: { ok: boolean; dry: boolean; cached: boolean; storePath: string | null } | null }
const rows = (stdout: string): Map<string, Row> => new Map((JSON.parse(stdout) as { hosts: Row[] }).hosts.map((r) => [r.host, r]));

before(async () => {
  if (skip) return;
  fleet = await TestFleet.create();
  const nix = await makeNixEnv(path.join(fleet.dir, 'nix'));
  const hubJson = path.join(fleet.fleetDir, 'hub.json');
  const settings = JSON.parse(await readFile(hubJson, 'utf8')) as Record<string, unknown>;
  settings['publish'] = {
    buildCommand: [nix.standin],
    buildEnv: { NIX_CONFIG: nix.env['NIX_CONFIG']!, PATH: nix.env['PATH']! },
    // Real flakes need nixpkgs; the stand-in's "flake" is DIR/default.nix, an attrset of systems.
    flakeHostsCommand: ['nix-instantiate', '--eval', '--json', '--strict', '-E', 'builtins.attrNames (import {dir})'],
    buildJobs: 4,
  };
  await writeFile(hubJson, JSON.stringify(settings));
  hosts = path.join(fleet.fleetDir, 'hosts');
  // Every host deployed here is registered: deploy refuses others (UNKNOWN_HOST, test/integration/cli-import.test.ts).
  await fleet.addHosts(['web1', 'app1', 'app2', 'badeval', 'badbuild', 'evil1', 'evil2', 'evil3']);
  // web1 shares utils/ with the fleet through a symlink, as upstream's layout does.
  await mkdir(path.join(fleet.fleetDir, 'utils'), { recursive: true });
  await writeFile(path.join(fleet.fleetDir, 'utils', 'common.nix'), '{ }\n');
  await writeFixtureConfig(path.join(hosts, 'web1', 'configuration.nix'), { host: 'web1', label: 'v1' });
  await symlink('../../utils', path.join(hosts, 'web1', 'utils'));
  await writeFixtureConfig(path.join(hosts, 'badeval', 'configuration.nix'), { host: 'badeval', label: 'v1', evalFails: true });
  await writeFixtureConfig(path.join(hosts, 'badbuild', 'configuration.nix'), { host: 'badbuild', label: 'v1', buildFails: true });
  // One flake directory defining two hosts.
  await writeFlakeLikeDir(path.join(hosts, 'cluster'), [{ host: 'app1', label: 'v1' }, { host: 'app2', label: 'v1' }]);
  await writeFile(path.join(hosts, 'cluster', 'flake.nix'), '{ outputs = { self }: { }; }\n');
});

after(async () => { await fleet?.close(); });

test('build: real nix builds in parallel, one row per host; failures make it exit 1', { skip }, async () => {
  const r = await fleet.hubCli(['build', '--json'], 180_000);
  assert.equal(r.code, 1, r.stderr);
  const m = rows(r.stdout);
  assert.deepEqual([...m.keys()].sort(), ['app1', 'app2', 'badbuild', 'badeval', 'web1']);
  for (const h of ['web1', 'app1', 'app2']) {
    assert.equal(m.get(h)!.result, 'ok', `${h}: ${m.get(h)!.message}`);
    assert.match(m.get(h)!.build!.storePath ?? '', new RegExp(`^/nix/store/[a-z0-9]{32}-nixos-system-${h}-v1$`));
  }
  assert.equal(m.get('badeval')!.result, 'failed');
  assert.match(m.get('badeval')!.message, /evaluation error in the configuration of badeval/);
  assert.equal(m.get('badbuild')!.result, 'failed');
  assert.match(m.get('badbuild')!.message, /fails on purpose/);
  assert.equal(m.get('app1')!.hash, m.get('app2')!.hash, 'both hosts of one flake get the same tree');
  // The text form: a header and a row per host; progress went to stderr.
  const text = await fleet.hubCli(['build', 'web1', '--dry']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^HOST\s+RESULT\s+TIME\s+HASH\s+NOTE\n/);
  assert.match(text.stdout, /\nweb1\s+ok\s+/);
  assert.match(text.stderr, /web1: evaluating/);
  const unknown = await fleet.hubCli(['build', 'nosuch']);
  assert.equal(unknown.code, 5);
});

test('deploy: publishes what built, refuses what did not, then reports "no changes"', { skip }, async () => {
  const r = await fleet.hubCli(['deploy', '--json'], 180_000);
  assert.equal(r.code, 1, 'a refused host makes deploy exit 1');
  const m = rows(r.stdout);
  // The last real build of the same content succeeded: reused (web1's later dry run does not replace it).
  for (const h of ['web1', 'app1', 'app2']) {
    assert.equal(m.get(h)!.result, 'updated', `${h}: ${m.get(h)!.message}`);
    assert.equal(m.get(h)!.build!.cached, true, `${h}: the successful build of the same content was reused`);
    assert.deepEqual(await readPublished(fleet.fleetDir, h).then((p) => p?.hash), m.get(h)!.hash);
  }
  for (const h of ['badeval', 'badbuild']) {
    assert.equal(m.get(h)!.result, 'refused');
    assert.match(m.get(h)!.message, /build failed, not published/);
    assert.equal(await readPublished(fleet.fleetDir, h), null, `${h} is not published`);
  }
  // Published trees are self-contained (the symlink was dereferenced), and hash to their name.
  const web1 = m.get('web1')!.hash!;
  const tree = path.join(fleet.fleetDir, 'jails', 'web1', 'versions', web1);
  assert.ok((await lstat(path.join(tree, 'utils'))).isDirectory());
  assert.equal(await readFile(path.join(tree, 'utils', 'common.nix'), 'utf8'), '{ }\n');
  assert.equal((await hashTree(tree)).hash, web1);
  assert.equal(await readlink(path.join(fleet.fleetDir, 'jails', 'web1', 'config')), `versions/${web1}`);
  assert.match(await readFile(path.join(fleet.fleetDir, 'jails', 'web1', 'last_change_date'), 'utf8'), /^\d{4}-\d\d-\d\dT/);
  // The flake's tree went to both of its hosts.
  assert.ok((await lstat(path.join(fleet.fleetDir, 'jails', 'app2', 'versions', m.get('app2')!.hash!, 'default.nix'))).isFile());

  const again = await fleet.hubCli(['deploy', 'web1', 'app1', 'app2']);
  assert.equal(again.code, 0, again.stderr);
  for (const h of ['web1', 'app1', 'app2']) assert.match(again.stdout, new RegExp(`\\n${h}\\s+no changes`));
  const pub = await readPublished(fleet.fleetDir, 'web1');

  // A change: only that host gets a new version, and says which hash.
  await writeFixtureConfig(path.join(hosts, 'web1', 'configuration.nix'), { host: 'web1', label: 'v2' });
  const changed = await fleet.hubCli(['deploy', 'web1', 'app1']);
  assert.equal(changed.code, 0, changed.stderr);
  const next = await readPublished(fleet.fleetDir, 'web1');
  assert.notEqual(next!.hash, pub!.hash);
  assert.match(changed.stdout, new RegExp(`\\nweb1\\s+updated ${next!.hash}`));
  assert.match(changed.stdout, /\napp1\s+no changes/);
  assert.ok(Date.parse(next!.publishedAt) > Date.parse(pub!.publishedAt));
  assert.ok((await lstat(path.join(fleet.fleetDir, 'jails', 'web1', 'versions', pub!.hash))).isDirectory(), 'the previous version is kept');

  // --force publishes a failing build (upstream would; bento only when asked).
  const forced = await fleet.hubCli(['deploy', 'badbuild', '--force', '--json']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(rows(forced.stdout).get('badbuild')!.result, 'updated');
  assert.match(rows(forced.stdout).get('badbuild')!.message, /--force/);
  const vf = JSON.parse(await readFile(path.join(fleet.fleetDir, 'jails', 'badbuild', 'version.json'), 'utf8')) as { buildOk: boolean };
  assert.equal(vf.buildOk, false);
});

test('deploy refuses symlinks that leave the fleet or point at the hub\'s own files', { skip }, async () => {
  await writeFixtureConfig(path.join(hosts, 'evil1', 'configuration.nix'), { host: 'evil1', label: 'v1' });
  await symlink('/etc', path.join(hosts, 'evil1', 'etc'));
  await writeFixtureConfig(path.join(hosts, 'evil2', 'configuration.nix'), { host: 'evil2', label: 'v1' });
  await symlink('../../hub_ed25519_key', path.join(hosts, 'evil2', 'key'));
  await writeFixtureConfig(path.join(hosts, 'evil3', 'configuration.nix'), { host: 'evil3', label: 'v1' });
  await symlink('../../jails/web1', path.join(hosts, 'evil3', 'other'));
  const r = await fleet.hubCli(['deploy', 'evil1', 'evil2', 'evil3', '--json']);
  assert.equal(r.code, 1);
  const m = rows(r.stdout);
  assert.equal(m.get('evil1')!.result, 'refused');
  assert.match(m.get('evil1')!.message, /hosts\/evil1\/etc: symlink points outside the fleet directory \(\/etc\); refused/);
  assert.equal(m.get('evil2')!.result, 'refused');
  assert.match(m.get('evil2')!.message, /hub's own hub_ed25519_key/);
  assert.equal(m.get('evil3')!.result, 'refused');
  assert.match(m.get('evil3')!.message, /hub's own jails/);
  for (const h of ['evil1', 'evil2', 'evil3']) {
    assert.equal(await readPublished(fleet.fleetDir, h), null);
    const left = await readdir(path.join(fleet.fleetDir, 'jails', h)).catch(() => []);
    assert.ok(!left.some((n) => n.startsWith('.staging-')), `${h}: no staging left behind: ${left.join(' ')}`);
  }
});

test('a deploy killed with SIGKILL at any moment leaves the previous version intact', async () => {
  // Its own fleet: a big tree (so there is a "midway" to hit) and a trivial build.
  const f = await TestFleet.create({ hubSettings: { publish: { buildCommand: ['true'] } } });
  try {
    await f.addHost('big1');
    const src = path.join(f.fleetDir, 'hosts', 'big1');
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, 'configuration.nix'), '{ }\n');
    for (let d = 0; d < 10; d++) {
      await mkdir(path.join(src, `d${d}`));
      for (let i = 0; i < 100; i++) await writeFile(path.join(src, `d${d}`, `f${i}.txt`), `${d}/${i}\n`.repeat(200));
    }
    const first = await f.hubCli(['deploy', 'big1']);
    assert.equal(first.code, 0, first.stderr);
    const committed = new Set([(await readPublished(f.fleetDir, 'big1'))!.hash]);
    let killedMidway = 0;
    for (const delay of [20, 60, 120, 200, 350, 550, 800]) {
      await writeFile(path.join(src, 'configuration.nix'), `{ } # ${delay}\n`);
      const child = spawn(process.execPath, [HUB_BIN, 'deploy', 'big1', '--dir', f.fleetDir], { stdio: 'ignore' });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      await sleep(delay);
      const wasRunning = child.exitCode === null;
      child.kill('SIGKILL');
      const code = await exited;
      if (wasRunning && code === null) killedMidway++;
      const now = await readPublished(f.fleetDir, 'big1');
      assert.ok(now, 'a version is always published');
      const tree = path.join(f.fleetDir, 'jails', 'big1', 'versions', now.hash);
      assert.equal((await hashTree(tree)).hash, now.hash, `after a kill at ${delay} ms the served tree is complete and matches its hash`);
      if (!committed.has(now.hash)) committed.add(now.hash);
    }
    assert.ok(killedMidway >= 4, `at least some deploys were really killed midway (${killedMidway})`);
    // The next deploy finishes the job and clears what the killed ones left.
    const fin = await f.hubCli(['deploy', 'big1']);
    assert.equal(fin.code, 0, fin.stderr);
    const left = await readdir(path.join(f.fleetDir, 'jails', 'big1'));
    assert.ok(!left.some((n) => n.startsWith('.staging-') || n.startsWith('.config-')), left.join(' '));
    const final = (await readPublished(f.fleetDir, 'big1'))!;
    assert.equal((await hashTree(path.join(f.fleetDir, 'jails', 'big1', 'versions', final.hash))).hash, final.hash);
    assert.equal(await readFile(path.join(f.fleetDir, 'jails', 'big1', 'versions', final.hash, 'configuration.nix'), 'utf8'), '{ } # 800\n');
  } finally {
    await f.close();
  }
});
