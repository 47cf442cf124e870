// The Nix package and the flake, checked where nixpkgs is not available: no
// placeholder hash can be committed again; every npm dependency reaches
// importNpmLock with a URL and the lock's own integrity hash; nixos/package.nix
// uses importNpmLock (no npmDepsHash) and one nodejs for the build, the native
// addons and the install check; the flake's modules default their package to
// the flake's own build, the checkout entry to a build of the checkout.
// nixos/package.nix is evaluated with its nixpkgs arguments replaced by
// functions that return what they were given (nothing is built here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, evalModules, nixEval, nixError, evalExpr } from './nixos-nix.js';

const SELF = 'test/unit/nixos-package.test.ts';
// lib.fakeHash, lib.fakeSha256 / fakeSha512 by name or by value, and SRI placeholders like sha256-AAAA...=.
const FAKE = [/\bfake(Hash|Sha256|Sha512)\b/, /sha(256|512)-A{16,}/, /\b0{52}\b/, /\bsha256-0{40,}/];

test('no tracked file holds a placeholder Nix hash (lib.fakeHash, sha256-AAAA...=), except this test', () => {
  const r = spawnSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `git ls-files failed (this check needs the git checkout): ${r.stderr}`);
  const files = r.stdout.split('\0').filter(Boolean);
  assert.ok(files.includes('nixos/package.nix') && files.length > 100, 'the whole checkout is listed');
  const hits: string[] = [];
  for (const f of files) {
    if (f === SELF || !existsSync(path.join(ROOT, f))) continue;
    const text = readFileSync(path.join(ROOT, f), 'utf8');
    text.split('\n').forEach((line, i) => {
      for (const re of FAKE) if (re.test(line)) hits.push(`${f}:${i + 1}: ${line.trim().slice(0, 120)}`);
    });
  }
  assert.deepEqual(hits, [], 'placeholder hashes make `nix build` fail on every real machine');
  assert.equal(existsSync(path.join(ROOT, 'nixos/npm-deps-hash')), false, 'no hand-kept npmDepsHash');
  // The patterns do match what they are meant to catch.
  for (const bad of ['npmDepsHash = lib.fakeHash;', 'hash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";', 'sha256 = lib.fakeSha256;', '"0000000000000000000000000000000000000000000000000000"']) {
    assert.ok(FAKE.some((re) => re.test(bad)), bad);
  }
});

test('every package of package-lock.json gets its registry URL and keeps its sha512 integrity (nixos/lib/npm-lock.nix)', () => {
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; integrity?: string; resolved?: string }> };
  const filled = nixEval<Record<string, { resolved?: string; integrity?: string; version?: string }>>(
    '(import ./nixos/lib/npm-lock.nix { inherit lib; } (lib.importJSON ./package-lock.json)).packages');
  const keys = Object.keys(lock.packages).filter((k) => k !== '');
  assert.ok(keys.length > 20);
  assert.deepEqual(Object.keys(filled).sort(), Object.keys(lock.packages).sort());
  for (const k of keys) {
    const p = filled[k]!;
    assert.match(p.resolved ?? '', /^https:\/\/registry\.npmjs\.org\/(@[a-z0-9._-]+\/)?[a-z0-9._-]+\/-\/[a-z0-9._-]+-\d[^/]*\.tgz$/, k);
    assert.equal(p.integrity, lock.packages[k]!.integrity, `${k}: integrity is the lock's`);
    assert.match(p.integrity ?? '', /^sha512-/, k);
    if (lock.packages[k]!.resolved) assert.equal(p.resolved, lock.packages[k]!.resolved, `${k}: a resolved URL is kept`);
  }
  // Scoped and nested packages: the name is the last node_modules/ segment.
  const nested = 'node_modules/@types/ssh2/node_modules/@types/node';
  assert.equal(filled[nested]!.resolved, `https://registry.npmjs.org/@types/node/-/node-${lock.packages[nested]!.version}.tgz`);
  assert.equal(filled['node_modules/cpu-features']!.resolved, `https://registry.npmjs.org/cpu-features/-/cpu-features-${lock.packages['node_modules/cpu-features']!.version}.tgz`, 'the optional addon is fetched too');
  // A lock entry without integrity cannot be fetched safely: a clear error, not a fetch without a hash.
  assert.match(nixError('(import ./nixos/lib/npm-lock.nix { inherit lib; } { packages = { "" = { }; "node_modules/x" = { version = "1.0.0"; }; }; }).packages."node_modules/x".resolved'),
    /package-lock\.json: node_modules\/x has no version or integrity/);
});

test('nixos/package.nix: importNpmLock and its hook, no npmDepsHash, one nodejs for build, addons and install check', () => {
  const r = nixEval<{ hasHash: boolean; hook: string; nodejs: string; passNode: string; importArgs: string[]; lockResolved: Array<string | null>; installCheck: string; pname: string; version: string }>(`
    let
      pkgs = import ./nixos/tests/pkgs-stub.nix { inherit lib; };
      p = import ./nixos/package.nix {
        inherit lib;
        inherit (pkgs) nodejs;
        buildNpmPackage = args: args;
        importNpmLock = { npmConfigHook = "importNpmLock.npmConfigHook"; __functor = _: args: { importNpmLockArgs = args; }; };
      };
      imported = p.npmDeps.importNpmLockArgs;
    in {
      hasHash = p ? npmDepsHash;
      hook = p.npmConfigHook;
      nodejs = "\${p.nodejs}";
      passNode = "\${p.passthru.nodejs}";
      importArgs = builtins.attrNames imported;
      lockResolved = lib.mapAttrsToList (k: v: if k == "" then "root" else v.resolved or null) imported.packageLock.packages;
      installCheck = p.installCheckPhase;
      inherit (p) pname version;
    }`);
  assert.equal(r.hasHash, false);
  assert.equal(r.hook, 'importNpmLock.npmConfigHook', 'node_modules is installed by importNpmLock\'s hook from the fetched tarballs');
  assert.deepEqual(r.importArgs, ['package', 'packageLock']);
  assert.ok(r.lockResolved.every((x) => x !== null), 'importNpmLock fetches only packages with a URL: all of them have one');
  assert.match(r.nodejs, /-nodejs$/);
  assert.equal(r.passNode, r.nodejs, 'the hub\'s build-time config check runs the same node');
  assert.ok(r.installCheck.includes(`${r.nodejs}/bin/node -e`), 'the addons are loaded by the node that runs them');
  assert.match(r.installCheck, /require\(dir \+ "cpu-features"\)\(\);/);
  assert.match(r.installCheck, /sshcrypto\.node/);
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  assert.deepEqual([r.pname, r.version], [manifest.name, manifest.version]);
});

// The flake's outputs with nixpkgs replaced by the real lib and stand-in package sets.
const FLAKE = 'let flake = import ./nixos/tests/flake-stub.nix { inherit lib; }; in';

test('flake: outputs, and nixosModules default their package to the flake\'s own build (importing the module is enough)', () => {
  const r = nixEval<{ outputs: string[]; modules: string[]; systems: string[]; checks: string[] }>(`${FLAKE} {
    outputs = builtins.attrNames flake; modules = builtins.attrNames flake.nixosModules;
    systems = builtins.attrNames flake.packages; checks = builtins.attrNames flake.checks.x86_64-linux; }`);
  for (const o of ['packages', 'nixosModules', 'overlays', 'devShells', 'checks']) assert.ok(r.outputs.includes(o), o);
  assert.deepEqual(r.modules, ['client', 'default', 'hub']);
  assert.deepEqual(r.systems, ['aarch64-linux', 'x86_64-linux']);
  assert.deepEqual(r.checks, ['package', 'reboot-test', 'vm-test']);
  const FP = 'SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30';
  // No overlay (pkgs has no bento-fleet): the flake's package. Both hub and default imported: still one definition.
  const v = evalModules<{ hub: { package: string }; client: { package: string }; failedAssertions: string[] }>(`${FLAKE} [
    flake.nixosModules.hub flake.nixosModules.default
    { services.bento.hub.enable = true; services.bento.client = { enable = true; hub = "ssh://h:2222"; hubFingerprint = "${FP}"; }; }
  ]`, { entry: 'none', withBento: false });
  assert.deepEqual(v.failedAssertions, []);
  assert.equal(v.hub.package, '/nix/store/00000000000000000000000000000flk-bento-fleet-flake-x86_64-linux');
  assert.equal(v.client.package, v.hub.package);
  // The user's choice wins over the flake's default.
  const own = evalModules<{ hub: { package: string } }>(`${FLAKE} [ flake.nixosModules.hub ({ pkgs, ... }: { services.bento.hub = { enable = true; package = pkgs.nodejs; }; }) ]`, { entry: 'none', withBento: false });
  assert.match(own.hub.package, /-nodejs$/);
});

test('checkout entry (nixos/modules without flakes): the overlay\'s pkgs.bento-fleet, else a build of this checkout', () => {
  const v = evalModules<{ hub: { package: string } }>('[ { services.bento.hub.enable = true; } ]', { entry: 'checkout', withBento: true });
  assert.match(v.hub.package, /-bento-fleet-0\.1\.0$/, 'the overlay\'s package');
  const err = nixError(evalExpr('[ { services.bento.hub.enable = true; } ]', { entry: 'checkout', withBento: false, select: 'hub.package' }));
  assert.match(err, /pkgs-stub: callPackage \S+\/nixos\/package\.nix/, 'falls back to building nixos/package.nix');
  // The modules proper (what the flake wraps) name pkgs.bento-fleet, as mkPackageOption does.
  assert.match(nixError(evalExpr('[ { services.bento.hub.enable = true; } ]', { entry: 'module', withBento: false, select: 'hub.package' })),
    /error: bento-fleet cannot be found in pkgs/);
});
