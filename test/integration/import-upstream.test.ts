// `bento-hub import` against an upstream-Bento-like tree written here: the
// layout of github.com/rapenne-s/bento (hosts/, utils/ symlinked into host
// dirs, fleet.nix with the chroot users' keys, config.sh), run as the real
// CLI from dist/ against a real fleet directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HUB_BIN, runCli } from '../helpers/fleet.js';
import { tmpDir } from '../helpers/proc.js';
import { normaliseKey } from '../../hub/fleet/registry.js';
import { flakeHostNames, parseShellVars, readFleetUsers } from '../../hub/fleet/import-upstream.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';

const pub = (comment: string): string => `${generateEd25519().public.trim()} ${comment}`;

async function put(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

/** An upstream Bento directory; returns the keys fleet.nix holds. */
async function upstreamTree(root: string): Promise<Record<string, string>> {
  const keys = { router: pub('root@router'), laptop: pub('root@laptop'), nas: pub('root@nas'), ghost: pub('root@ghost') };
  await put(path.join(root, 'config.sh'), 'CHROOT_DIR=/home/chroot\nREMOTE_IP=old-hub.example # the sftp server\nREMOTE_PORT="2200"\n#TIMEOUT=20\n');
  // The template's shape, a commented-out user, and a hand-written user.
  await put(path.join(root, 'fleet.nix'), `{ lib, pkgs, ... }:
let
  create_users = host: {
    users.users."\${host.username}" = {
      home = "/home/chroot/" + host.username;
      isSystemUser = true;
      group = "sftp_users";
      openssh.authorizedKeys.keys = [ host.key ];
    };
  };
  users = [
    { username = "router"; key = "${keys.router}"; }
    {
      username = "laptop"; # the t470
      key = "${keys.laptop}";
    }
    # { username = "ghost"; key = "${keys.ghost}"; }
  ];
in {
  imports = builtins.map create_users users ++ [ {
    users.users.nas = { isSystemUser = true; group = "sftp_users"; openssh.authorizedKeys.keys = [ "${keys.nas}" ]; };
  } ];
  users.groups.sftp_users = { };
}
`);
  await put(path.join(root, 'utils/bento.nix'), '{ ... }: { systemd.services.bento-upgrade.enable = true; }\n');
  await put(path.join(root, 'utils/common.nix'), '{ ... }: { time.timeZone = "UTC"; }\n');
  await put(path.join(root, 'hosts/router/configuration.nix'), '{ imports = [ ./utils/bento.nix ]; }\n');
  await symlink('../../utils', path.join(root, 'hosts/router/utils'));
  await put(path.join(root, 'hosts/all-flakes/flake.nix'), `{
  outputs = { self, nixpkgs }: {
    # nixosConfigurations.commented = x;
    nixosConfigurations = {
      laptop = nixpkgs.lib.nixosSystem { system = "x86_64-linux"; modules = [ ./laptop.nix { networking.hostName = "laptop"; } ]; };
      "nas" = nixpkgs.lib.nixosSystem { modules = [ ./nas.nix ]; };
    };
  };
}
`);
  await put(path.join(root, 'hosts/all-flakes/laptop.nix'), '{ }\n');
  await put(path.join(root, 'hosts/all-flakes/nas.nix'), '{ }\n');
  await symlink('/nix/store/00000000000000000000000000000000-nixos-system-nas', path.join(root, 'hosts/all-flakes/result'));
  await put(path.join(root, 'hosts/newbox/configuration.nix'), '{ }\n');
  await symlink('.', path.join(root, 'hosts/newbox/self'));
  return keys;
}

async function freshFleet(dir: string): Promise<void> {
  const r = await runCli(HUB_BIN, ['init', '--dir', dir, '--json']);
  assert.equal(r.code, 0, r.stderr);
}

async function registry(dir: string): Promise<{ hosts: Record<string, { keys: string[]; tags: string[] }> }> {
  return JSON.parse(await readFile(path.join(dir, 'registry.json'), 'utf8'));
}

test('parsers: config.sh variables, fleet.nix users, flake host names', async () => {
  assert.deepEqual(parseShellVars('A=1\nexport B="two words"\n C=\'x\' \n#D=4\nE=v # c\n'), { A: '1', B: 'two words', C: 'x', E: 'v' });
  assert.deepEqual(flakeHostNames('{ outputs = _: { nixosConfigurations.web1 = a; nixosConfigurations."db-2" = b; }; }'), ['db-2', 'web1']);
  assert.deepEqual(flakeHostNames('{ nixosConfigurations = { x1 = mk { a = { b = 1; }; }; t470 = mk "t470"; /* gone = 1; */ }; }'), ['t470', 'x1']);
  const t = await tmpDir();
  try {
    const [k1, k2] = [pub('a'), pub('b')];
    await put(path.join(t.dir, 'inline.nix'), `{ ... }: { imports = map mk [ { username = "a"; key = "${k1}"; } { username = "b"; keys = [ "${k2}" ]; } ]; }`);
    assert.deepEqual(await readFleetUsers(path.join(t.dir, 'inline.nix')), [{ name: 'a', keys: [k1] }, { name: 'b', keys: [k2] }]);
    const keys = await upstreamTree(t.dir);
    const users = await readFleetUsers(path.join(t.dir, 'fleet.nix'));
    assert.deepEqual(Object.fromEntries(users.map((u) => [u.name, u.keys])), { router: [keys.router], laptop: [keys.laptop], nas: [keys.nas] });
  } finally {
    await t.cleanup();
  }
});

test('import: dry run, real run, idempotent re-run', async () => {
  const t = await tmpDir();
  try {
    const up = path.join(t.dir, 'upstream');
    const fleet = path.join(t.dir, 'fleet');
    const keys = await upstreamTree(up);
    await freshFleet(fleet);

    const dry = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet, '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout);
    assert.equal(plan.settings.remoteHost, 'old-hub.example');
    assert.equal(plan.settings.remotePort, 2200);
    assert.deepEqual(plan.hosts.map((h: { name: string; status: string }) => `${h.name}:${h.status}`),
      ['laptop:would-register', 'nas:would-register', 'newbox:no-key', 'router:would-register']);
    assert.deepEqual(Object.keys((await registry(fleet)).hosts), [], 'a dry run registers nothing');
    assert.deepEqual(await readdir(path.join(fleet, 'hosts')), [], 'a dry run copies nothing');

    const run = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet, '--tag', 'upstream', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const rep = JSON.parse(run.stdout);
    const reg = await registry(fleet);
    assert.deepEqual(Object.keys(reg.hosts).sort(), ['laptop', 'nas', 'router'], 'ghost is commented out, newbox has no key');
    for (const n of ['laptop', 'nas', 'router'] as const) {
      assert.deepEqual(reg.hosts[n]!.keys, [normaliseKey(keys[n]!)]);
      assert.deepEqual(reg.hosts[n]!.tags, ['upstream']);
    }
    assert.equal(rep.hosts.find((h: { name: string }) => h.name === 'laptop').config, 'all-flakes');
    assert.ok(rep.nextSteps.some((s: string) => s.includes('bento-hub add-host newbox --key-file newbox.pub')), rep.nextSteps.join('\n'));
    assert.ok(rep.nextSteps.some((s: string) => s.includes('identityFile = "/root/.ssh/id_ed25519"')));
    assert.ok(rep.nextSteps.some((s: string) => s.includes('ssh://old-hub.example:2222')));

    // Copies are self-contained: the utils symlink became a real directory.
    const utils = path.join(fleet, 'hosts/router/utils');
    assert.ok((await lstat(utils)).isDirectory() && !(await lstat(utils)).isSymbolicLink());
    assert.equal(await readFile(path.join(utils, 'bento.nix'), 'utf8'), await readFile(path.join(up, 'utils/bento.nix'), 'utf8'));
    assert.deepEqual((await readdir(path.join(fleet, 'hosts/all-flakes'))).sort(), ['flake.nix', 'laptop.nix', 'nas.nix'], 'result link skipped');
    assert.deepEqual(await readdir(path.join(fleet, 'hosts/newbox')), ['configuration.nix'], 'symlink loop skipped');
    assert.equal((await stat(path.join(fleet, 'hosts/router/configuration.nix'))).mode & 0o777, 0o644);
    assert.deepEqual((await readdir(path.join(fleet, 'hosts'))).sort(), ['all-flakes', 'newbox', 'router'], 'no staging left behind');
    const newbox = rep.dirs.find((d: { dir: string }) => d.dir === 'newbox');
    assert.ok(newbox.skipped.some((s: string) => s.startsWith('self')), JSON.stringify(newbox));

    const again = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const rep2 = JSON.parse(again.stdout);
    assert.deepEqual(rep2.hosts.map((h: { status: string }) => h.status), ['already-registered', 'already-registered', 'no-key', 'already-registered']);
    assert.ok(rep2.dirs.every((d: { status: string }) => d.status === 'exists'));

    const text = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet, '--dry-run']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^dry run: nothing changed/);
    assert.match(text.stdout, /next steps:/);
  } finally {
    await t.cleanup();
  }
});

test('import: conflicts and bad names are reported and exit 1; no fleet means exit 4', async () => {
  const t = await tmpDir();
  try {
    const up = path.join(t.dir, 'upstream');
    const fleet = path.join(t.dir, 'fleet');
    await upstreamTree(up);
    await put(path.join(up, 'hosts/T470/configuration.nix'), '{ }\n');

    const none = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet]);
    assert.equal(none.code, 4, none.stderr);
    assert.match(none.stderr, /bento-hub init/);

    await freshFleet(fleet);
    const add = await runCli(HUB_BIN, ['add-host', 'router', '--dir', fleet, '--key', pub('other')]);
    assert.equal(add.code, 0, add.stderr);
    const r = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const rep = JSON.parse(r.stdout);
    const by = Object.fromEntries(rep.hosts.map((h: { name: string }) => [h.name, h]));
    assert.equal(by['router'].status, 'error');
    assert.match(by['router'].message, /other key/);
    assert.equal(by['T470'].status, 'error');
    assert.match(by['T470'].message, /upper-case/);
    assert.equal(by['laptop'].status, 'registered', 'one bad host does not stop the others');

    assert.equal(rep.dirs.find((d: { dir: string }) => d.dir === 'T470').status, 'error', 'a configuration dir named like no valid host is not copied');
    const missing = await runCli(HUB_BIN, ['import', '--from', path.join(t.dir, 'nope'), '--dir', fleet]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /not an upstream Bento directory/);
  } finally {
    await t.cleanup();
  }
});
