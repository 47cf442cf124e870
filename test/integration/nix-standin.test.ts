// The nixos-rebuild stand-in against real Nix (Debian nix-bin): real nix-build, a real
// system profile, the built path's own switch-to-configuration. No mocks. Skipped only
// when nix-build is missing or the store is not writable.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { sleep, tmpDir, waitFor } from '../helpers/proc.js';
import {
  buildFixture, currentSystemPath, listGenerations, makeNixEnv, nixAvailable, nixUnavailableReason,
  profilePath, readActivations, runStandin, writeFixtureConfig, writeFlakeLikeDir,
  type FixtureOptions, type NixEnv,
} from '../fixtures/nix.js';

const BANNER = /^bento: TEST STAND-IN for nixos-rebuild/;
let base = '';
let cleanup: () => Promise<void> = async () => {};
let envCount = 0;

before(async () => { ({ dir: base, cleanup } = await tmpDir('bento-nix-')); });
after(async () => { await cleanup(); });

function nixTest(name: string, fn: (t: TestContext) => Promise<void>): void {
  test(name, async (t) => {
    if (!nixAvailable()) { t.skip(`real Nix unavailable: ${nixUnavailableReason()}`); return; }
    await fn(t);
  });
}

async function newEnv(): Promise<NixEnv> { return makeNixEnv(path.join(base, `env${++envCount}`)); }

/** Writes a fixture config and returns [file, its store path built independently of the stand-in]. */
async function config(env: NixEnv, opts: FixtureOptions, build = true): Promise<[string, string]> {
  const file = path.join(env.root, 'configs', `${opts.host}-${opts.label}.nix`);
  await writeFixtureConfig(file, opts);
  return [file, build ? await buildFixture(file, env) : ''];
}

async function rebuild(env: NixEnv, action: string, file: string, extra: Record<string, string> = {}) {
  return runStandin(env, [action, '-I', `nixos-config=${file}`], extra);
}

function ok(r: { code: number | null; stdout: string; stderr: string }, what: string): void {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
}

nixTest('switch: new generation, current system = exactly the new path, activation ran', async () => {
  const env = await newEnv();
  const [a, pathA] = await config(env, { host: 'web1', label: 'switch-a' });
  const [b, pathB] = await config(env, { host: 'web1', label: 'switch-b' });
  const r = await rebuild(env, 'switch', a);
  ok(r, 'switch a');
  assert.match(r.lines[0] ?? '', BANNER);
  assert.ok(r.lines.includes('activating the configuration... (web1, switch-a)'), r.lines.join('\n'));
  assert.deepEqual(await listGenerations(env), [1]);
  assert.equal(await profilePath(env), pathA);
  assert.equal(await currentSystemPath(env), pathA);
  ok(await rebuild(env, 'switch', b), 'switch b');
  assert.deepEqual(await listGenerations(env), [1, 2]);
  assert.equal(await currentSystemPath(env), pathB);
  assert.equal(await profilePath(env), pathB);
  assert.deepEqual(await readActivations(env), [`switch ${pathA}`, `switch ${pathB}`]);
});

nixTest('boot sets the profile but leaves the current system; test does the opposite', async () => {
  const env = await newEnv();
  const [a, pathA] = await config(env, { host: 'web1', label: 'boot-a' });
  const [b, pathB] = await config(env, { host: 'web1', label: 'boot-b' });
  const [c, pathC] = await config(env, { host: 'web1', label: 'boot-c' });
  ok(await rebuild(env, 'switch', a), 'switch a');
  ok(await rebuild(env, 'boot', b), 'boot b');
  assert.deepEqual(await listGenerations(env), [1, 2]);
  assert.equal(await profilePath(env), pathB);
  assert.equal(await currentSystemPath(env), pathA);
  ok(await rebuild(env, 'test', c), 'test c');
  assert.deepEqual(await listGenerations(env), [1, 2]);
  assert.equal(await profilePath(env), pathB);
  assert.equal(await currentSystemPath(env), pathC);
  assert.deepEqual(await readActivations(env), [`switch ${pathA}`, `boot ${pathB}`, `test ${pathC}`]);
});

nixTest('build prints the path and changes nothing; dry-build does not even build', async () => {
  const env = await newEnv();
  const [a, pathA] = await config(env, { host: 'web1', label: 'build-a' });
  const r = await rebuild(env, 'build', a);
  ok(r, 'build');
  assert.equal(r.stdout.trim().split('\n').pop(), pathA);
  assert.equal(await profilePath(env), null);
  assert.equal(await currentSystemPath(env), null);
  assert.deepEqual(await listGenerations(env), []);
  const [fresh] = await config(env, { host: 'web1', label: 'dry', nonce: `${Date.now()}-${process.pid}` }, false);
  const d = await rebuild(env, 'dry-build', fresh);
  ok(d, 'dry-build');
  const wouldBe = d.stdout.trim().split('\n').pop() ?? '';
  assert.match(wouldBe, /^\/nix\/store\/[a-z0-9]{32}-nixos-system-web1-dry$/);
  assert.equal(existsSync(wouldBe), false, 'dry-build must not build');
  const da = await rebuild(env, 'dry-activate', a);
  ok(da, 'dry-activate');
  assert.ok(da.lines.includes('would activate the configuration... (web1, build-a)'));
  assert.equal(await currentSystemPath(env), null);
});

nixTest('a failing build exits non-zero and changes neither profile nor current system', async () => {
  const env = await newEnv();
  const [a, pathA] = await config(env, { host: 'web1', label: 'fail-a' });
  const [bad] = await config(env, { host: 'web1', label: 'fail-build', buildFails: true }, false);
  ok(await rebuild(env, 'switch', a), 'switch a');
  const r = await rebuild(env, 'switch', bad);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /fails on purpose/);
  assert.match(r.stderr, /bento test stand-in\): error: building .* failed/);
  assert.deepEqual(await listGenerations(env), [1]);
  assert.equal(await profilePath(env), pathA);
  assert.equal(await currentSystemPath(env), pathA);
});

nixTest('an evaluation error exits non-zero and changes nothing', async () => {
  const env = await newEnv();
  const [bad] = await config(env, { host: 'web1', label: 'eval', evalFails: true }, false);
  const r = await rebuild(env, 'switch', bad);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /evaluation error in the configuration of web1/);
  assert.deepEqual(await listGenerations(env), []);
  assert.equal(await currentSystemPath(env), null);
});

nixTest('a failing switch exits non-zero; before or after activating the new system', async () => {
  const env = await newEnv();
  const [a, pathA] = await config(env, { host: 'web1', label: 'sw-a' });
  const [bad, pathBad] = await config(env, { host: 'web1', label: 'sw-bad', switchFails: true });
  const [late, pathLate] = await config(env, { host: 'web1', label: 'sw-late', switchFails: 'after-activation' });
  ok(await rebuild(env, 'switch', a), 'switch a');
  const r = await rebuild(env, 'switch', bad);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /switch-to-configuration switch of .* failed \(exit 1\)/);
  assert.equal(await currentSystemPath(env), pathA, 'activation failed before repointing');
  assert.equal(await profilePath(env), pathBad, 'like NixOS, the profile is set before activation');
  const l = await rebuild(env, 'switch', late);
  assert.equal(l.code, 4, l.stderr);
  assert.equal(await currentSystemPath(env), pathLate);
  assert.deepEqual(await listGenerations(env), [1, 2, 3]);
});

nixTest('two labels give two store paths; the same options give the same path', async () => {
  const env = await newEnv();
  const [, p1] = await config(env, { host: 'web1', label: 'same-1' });
  const [, p2] = await config(env, { host: 'web1', label: 'same-2' });
  const again = path.join(env.root, 'again.nix');
  await writeFixtureConfig(again, { host: 'web1', label: 'same-1' });
  assert.notEqual(p1, p2);
  assert.equal(await buildFixture(again, env), p1);
});

nixTest('--flake DIR#ATTR builds attribute ATTR of DIR/default.nix', async () => {
  const env = await newEnv();
  const dir = path.join(env.root, 'fleet');
  await writeFlakeLikeDir(dir, [
    { host: 'web1', label: 'fleet' }, { host: 'web2', label: 'fleet' }, { host: 'broken', label: 'fleet', evalFails: true },
  ]);
  const r = await runStandin(env, ['switch', '--flake', `${dir}#web2`]);
  ok(r, 'switch --flake');
  assert.match((await currentSystemPath(env)) ?? '', /-nixos-system-web2-fleet$/);
  const bad = await runStandin(env, ['build', '--flake', `${dir}#broken`]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /evaluation error in the configuration of broken/);
  const missing = await runStandin(env, ['build', '--flake', `${dir}#nope`]);
  assert.notEqual(missing.code, 0);
});

nixTest('kernelVersion decides the kernel store path', async () => {
  const env = await newEnv();
  const [, a] = await config(env, { host: 'web1', label: 'k-a', kernelVersion: '6.1.0' });
  const [, b] = await config(env, { host: 'web1', label: 'k-b', kernelVersion: '6.1.0' });
  const [, c] = await config(env, { host: 'web1', label: 'k-c', kernelVersion: '6.6.1' });
  const kernel = (p: string) => readlink(path.join(p, 'kernel'));
  assert.equal(await kernel(a), await kernel(b));
  assert.notEqual(await kernel(a), await kernel(c));
  assert.notEqual(await readlink(path.join(a, 'initrd')), await readlink(path.join(c, 'initrd')));
  assert.match(await readFile(path.join(c, 'kernel'), 'utf8'), /6\.6\.1/);
  assert.ok(existsSync(path.join(c, 'kernel-modules', '6.6.1')));
});

nixTest('build output streams line by line while the build runs', async () => {
  const env = await newEnv();
  const [file] = await config(env, { host: 'web1', label: 'stream', outputLines: 4, outputIntervalSeconds: 0.3 }, false);
  const child = spawn(env.standin, ['build', '-I', `nixos-config=${file}`], { env: { ...process.env, ...env.env } });
  const seen: { line: string; at: number }[] = [];
  for (const s of [child.stdout, child.stderr]) {
    let partial = '';
    s.on('data', (b: Buffer) => {
      const parts = (partial + b.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) seen.push({ line, at: Date.now() });
    });
  }
  const code = await new Promise<number | null>((r) => child.once('close', r));
  const done = Date.now();
  assert.equal(code, 0, seen.map((s) => s.line).join('\n'));
  const steps = seen.filter((s) => s.line.startsWith('bento-fixture: build step'));
  assert.deepEqual(steps.map((s) => s.line), [1, 2, 3, 4].map((i) => `bento-fixture: build step ${i}/4`));
  assert.ok(done - steps[0]!.at >= 600, `first step arrived ${done - steps[0]!.at} ms before the end`);
});

nixTest('BENTO_AFTER_SWITCH_HOOK runs after the current system is repointed', async () => {
  const env = await newEnv();
  const [a, pathA] = await config(env, { host: 'web1', label: 'hook' });
  const seen = path.join(env.root, 'hook-saw');
  ok(await rebuild(env, 'switch', a, { BENTO_AFTER_SWITCH_HOOK: `readlink "$BENTO_CURRENT_SYSTEM" > ${seen}` }), 'switch');
  assert.equal((await readFile(seen, 'utf8')).trim(), pathA);
});

nixTest('SIGTERM during a hanging activation stops it before the system is repointed', async () => {
  const env = await newEnv();
  const [a, pathA] = await config(env, { host: 'web1', label: 'hang-a' });
  const [hang] = await config(env, { host: 'web1', label: 'hang', switchSleepSeconds: 30 });
  ok(await rebuild(env, 'switch', a), 'switch a');
  const child = spawn(env.standin, ['test', '-I', `nixos-config=${hang}`], { env: { ...process.env, ...env.env } });
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
  const closed = new Promise<number | null>((r) => child.once('close', r));
  await waitFor('activation to start sleeping', () => out.includes('activation sleeps 30s'), 20_000);
  const t0 = Date.now();
  child.kill('SIGTERM');
  assert.equal(await closed, 143, out);
  assert.ok(Date.now() - t0 < 3000, 'the stand-in and its activation stop promptly');
  await sleep(300);
  assert.equal(await currentSystemPath(env), pathA);
});

nixTest('--rollback: switch goes back one generation', async () => {
  const env = await newEnv();
  const [a, pathA] = await config(env, { host: 'web1', label: 'rb-a' });
  const [b] = await config(env, { host: 'web1', label: 'rb-b' });
  ok(await rebuild(env, 'switch', a), 'switch a');
  ok(await rebuild(env, 'switch', b), 'switch b');
  ok(await runStandin(env, ['switch', '--rollback']), 'rollback');
  assert.equal(await profilePath(env), pathA);
  assert.equal(await currentSystemPath(env), pathA);
});

nixTest('usage errors exit 1 before touching anything', async () => {
  const env = await newEnv();
  const [a] = await config(env, { host: 'web1', label: 'usage' }, false);
  const none = await runStandin(env, ['-I', `nixos-config=${a}`]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no action given/);
  const noCurrent = await runStandin(env, ['switch', '-I', `nixos-config=${a}`], { BENTO_CURRENT_SYSTEM: '' });
  assert.equal(noCurrent.code, 1);
  assert.match(noCurrent.stderr, /BENTO_CURRENT_SYSTEM/);
  assert.deepEqual(await listGenerations(env), []);
  const viaEnv = await runStandin(env, ['build'], { BENTO_NIXOS_CONFIG: a });
  ok(viaEnv, 'build via BENTO_NIXOS_CONFIG');
});
