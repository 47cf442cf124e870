// Prebuilt closure switch (issue 9, `bento-hub trigger --prebuilt`), all real:
// `bento-hub build` builds the host's fixture system with real Nix and, with
// hub.json publish.copyTo, copies it into a signed static binary cache; the
// path is then DELETED from /nix/store, so the only way back is through the
// cache, which the hub serves as its allow-listed "cache" service. The agent
// substitutes it through its own tunnel (`nix copy --from
// http://127.0.0.1:PORT`), sets its private system profile to exactly that
// path and runs the path's switch-to-configuration, under the rollback guard.
// A cache that is unsigned, tampered or lacks the path fails the job with a
// clear reason and switches nothing.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, waitForPort } from '../helpers/proc.js';
import { currentSystemPath, listGenerations, makeNixEnv, nixAvailable, nixUnavailableReason, profilePath, readActivations, runStandin, writeFixtureConfig, type NixEnv } from '../fixtures/nix.js';
import { durableJobs } from '../helpers/state.js';
import { closureOf, deleteFromStore, isValidPath, serveCacheDir, signingKey, type StaticCache } from './cache-helpers.js';

const execFileP = promisify(execFile);
const skip = nixAvailable() ? false : nixUnavailableReason();
const RUN = `${process.pid}${Date.now() % 100000}`;
let fleet: TestFleet;
let cache: StaticCache;
let hubNix: NixEnv;
let host: NixEnv;
let cacheDir = '';
let installed = '';

before(async () => {
  if (skip) return;
  fleet = await TestFleet.create();
  hubNix = await makeNixEnv(path.join(fleet.dir, 'hub-nix'));
  host = await makeNixEnv(path.join(fleet.dir, 'nix-web1'));
  const sk = path.join(fleet.dir, 'cache.sk');
  const publicKey = await signingKey(sk, 'bento-hub-prebuilt-1', hubNix.env);
  cacheDir = path.join(fleet.dir, 'binary-cache');
  cache = await serveCacheDir(cacheDir);
  const hubJson = path.join(fleet.fleetDir, 'hub.json');
  await writeFile(hubJson, JSON.stringify({
    ...JSON.parse(await readFile(hubJson, 'utf8')),
    services: { cache: `127.0.0.1:${cache.port}` },
    // No BENTO_SYSTEM_PROFILE: the hub's build leaves no out-link, only the GC root bento-hub registers.
    publish: { buildCommand: [hubNix.standin], buildEnv: { NIX_CONFIG: hubNix.env['NIX_CONFIG']!, PATH: hubNix.env['PATH']! }, copyTo: `file://${cacheDir}?secret-key=${sk}` },
  }));
  await fleet.addHost('web1');
  // The host as installed: generation 1 of its own profile, activated by its own switch-to-configuration.
  const cfg = path.join(fleet.dir, 'web1-configuration.nix');
  await writeFixtureConfig(cfg, { host: 'web1', label: 'installed' });
  const r = await runStandin(host, ['switch', '-I', `nixos-config=${cfg}`]);
  assert.equal(r.code, 0, r.stderr);
  installed = (await currentSystemPath(host))!;
  const cachePort = await freePort();
  await fleet.startHub();
  fleet.startAgent('web1', await fleet.agentConfig('web1', {
    configuration: cfg,
    cache: { localPort: cachePort },
    // The host trusts the hub's cache key, as services.bento.client.cache.publicKey does on NixOS.
    rebuildEnv: { ...host.env, NIX_CONFIG: `${host.env['NIX_CONFIG']}\nextra-trusted-public-keys = ${publicKey}` },
    currentSystem: host.currentSystem,
    systemProfile: host.profile,
    rollbackTimeoutMs: 10_000,
  }));
  await fleet.waitConnected(['web1']);
  await waitForPort(cachePort);
});

after(async () => {
  await fleet?.close();
  await cache?.close();
});

/** `bento-hub build web1` of a fresh fixture system (own kernel, so deleting its closure touches no other test). */
async function hubBuild(label: string, extra: { buildFails?: boolean } = {}): Promise<{ storePath: string; row: Record<string, unknown> }> {
  await writeFixtureConfig(path.join(fleet.fleetDir, 'hosts', 'web1', 'configuration.nix'),
    { host: 'web1', label: `${label}-${RUN}`, kernelVersion: `6.9.${RUN}-${label}`, nonce: `${RUN}-${label}`, ...extra });
  const r = await fleet.hubCli(['build', 'web1', '--json'], 120_000);
  const row = (JSON.parse(r.stdout) as { hosts: Array<Record<string, unknown>> }).hosts[0]!;
  return { storePath: (row['build'] as { storePath: string | null } | null)?.storePath ?? '', row };
}

/** Remove the hub's GC root and the closure from /nix/store: only the cache has it now. */
async function dropFromLocalStore(storePath: string): Promise<string[]> {
  const closure = await closureOf(storePath);
  await rm(path.join(fleet.fleetDir, 'state', 'builds', 'web1.system'), { force: true });
  await deleteFromStore(closure.filter((p) => p.includes(RUN)), hubNix.env);
  assert.equal(await isValidPath(storePath), false, `${storePath} is gone from /nix/store`);
  assert.equal(existsSync(storePath), false);
  return closure;
}

async function trigger(): Promise<{ code: number; events: Array<Record<string, unknown>>; out: string; end: Record<string, unknown> | undefined; ms: number }> {
  const t0 = Date.now();
  const r = await fleet.hubCli(['trigger', 'web1', '--prebuilt', '--json'], 90_000);
  const events = r.stdout.split('\n').filter((l) => l.startsWith('{"ev"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const out = events.filter((e) => e['ev'] === 'output').map((e) => String(e['data'])).join('\n');
  return { code: r.code, events, out, end: events.find((e) => e['ev'] === 'end'), ms: Date.now() - t0 };
}

const guardFile = (): string => path.join(fleet.dir, 'state-web1', 'rollback-guard.json');

test('no successful build: --prebuilt is refused with NO_PREBUILT (exit 5), nothing runs', { skip }, async () => {
  const none = await fleet.hubCli(['trigger', 'web1', '--prebuilt', '--json']);
  assert.equal(none.code, 5, none.stdout + none.stderr);
  assert.match(none.stdout, /"code":"NO_PREBUILT","message":"no build recorded for web1; run `bento-hub build web1` first"/);
  const failed = await hubBuild('nobuild', { buildFails: true });
  assert.equal(failed.row['result'], 'failed');
  const again = await fleet.hubCli(['trigger', 'web1', '--prebuilt']);
  assert.equal(again.code, 5);
  assert.match(again.stderr, /refused: the last build of web1 .* did not succeed; run `bento-hub build web1` first/);
  // Built, but the copy into the cache failed (its key file is missing): the row fails and --prebuilt refuses it.
  const hubJson = path.join(fleet.fleetDir, 'hub.json');
  const good = await readFile(hubJson, 'utf8');
  const settings = JSON.parse(good) as { publish: Record<string, unknown> };
  await writeFile(hubJson, JSON.stringify({ ...settings, publish: { ...settings.publish, copyTo: `file://${cacheDir}?secret-key=${fleet.dir}/missing.sk` } }));
  try {
    const nocopy = await hubBuild('nocopy');
    assert.equal(nocopy.row['result'], 'failed');
    assert.match(String(nocopy.row['message']), /^built, but not copied to the cache: nix copy exited 1: .*missing\.sk/);
    const copy = (nocopy.row['build'] as { cache?: { ok: boolean; to: string } }).cache;
    assert.deepEqual([copy?.ok, copy?.to], [false, `file://${cacheDir}`], 'the recorded URL carries no key file name');
    const refused = await fleet.hubCli(['trigger', 'web1', '--prebuilt']);
    assert.equal(refused.code, 5);
    assert.match(refused.stderr, /was built but not copied into the hub's cache .*; fix publish\.copyTo/);
  } finally {
    await writeFile(hubJson, good);
  }
  assert.equal(await profilePath(host), installed);
});

test('the hub builds, the host substitutes that exact path through its tunnel and switches to it', { skip }, async () => {
  const { storePath, row } = await hubBuild('good');
  assert.equal(row['result'], 'ok', JSON.stringify(row));
  const rec = JSON.parse(await readFile(path.join(fleet.fleetDir, 'state', 'builds', 'web1.json'), 'utf8')) as { cache?: { ok: boolean; to: string; durationMs: number } };
  assert.deepEqual([rec.cache?.ok, rec.cache?.to], [true, `file://${cacheDir}`], 'copied into the cache; the key file name is not recorded');
  const hash = path.basename(storePath).slice(0, 32);
  assert.ok(existsSync(path.join(cacheDir, `${hash}.narinfo`)));
  const closure = await dropFromLocalStore(storePath);
  const before = cache.requests.length;

  const r = await trigger();
  assert.equal(r.code, 0, r.out);
  assert.equal(r.events.find((e) => e['ev'] === 'accepted')?.['storePath'], storePath);
  assert.equal(r.end?.['outcome'], 'success', JSON.stringify(r.end));
  const served = cache.requests.slice(before);
  assert.ok(served.includes(`/${hash}.narinfo`), `the hub cache saw the narinfo request: ${served.join(' ')}`);
  assert.ok(served.filter((u) => u.startsWith('/nar/')).length >= closure.filter((p) => p.includes(RUN)).length, 'every deleted NAR came through the tunnel');
  assert.equal(await isValidPath(storePath), true);
  assert.equal(await profilePath(host), storePath, 'the profile points at exactly the hub\'s path');
  assert.equal(await currentSystemPath(host), storePath, 'its own switch-to-configuration ran');
  assert.equal((await readActivations(host)).at(-1), `switch ${storePath}`);
  assert.deepEqual(await listGenerations(host), [1, 2]);
  assert.match(r.out, /bento: prebuilt: substitute \S+ from the hub cache/);
  assert.match(r.out, /rollback guard: a fresh connection to the hub succeeded .* keeping /, 'guarded like a rebuild');
  assert.equal(existsSync(guardFile()), false);
  const job = (await durableJobs(fleet.fleetDir)).find((j) => j.id === r.end?.['jobId']);
  assert.equal(job?.state, 'success');
  assert.equal(job?.storePath, storePath);
  const steps = [...r.out.matchAll(/prebuilt: (?:realised|done) in (\d+) ms/g)].map((m) => Number(m[1]));
  process.stderr.write(`# prebuilt: hub nix copy into the cache ${rec.cache?.durationMs} ms; host: substitute ${steps[0]} ms (${closure.filter((p) => p.includes(RUN)).length} paths, ${served.length} HTTP requests), profile ${steps[1]} ms, switch ${steps[2]} ms; trigger to verdict ${r.ms} ms\n`);
});

for (const [what, spoil, expect] of [
  ['unsigned', async (hash: string) => {
    // Strip every signature of this build from the cache: an unsigned cache.
    for (const f of (await readdir(cacheDir)).filter((n) => n.endsWith('.narinfo'))) {
      const text = await readFile(path.join(cacheDir, f), 'utf8');
      if (text.includes(RUN)) await writeFile(path.join(cacheDir, f), text.replace(/^Sig: .*\n/gm, ''));
    }
    void hash;
  }, /cannot add path '\/nix\/store\/\S+' because it lacks a valid signature/],
  ['missing', async (hash: string) => { await rm(path.join(cacheDir, `${hash}.narinfo`)); }, /is required, but there is no substituter that can build it/],
  ['tampered', async (hash: string) => {
    // A well-formed, correctly compressed NAR of OTHER content under the signed narinfo: only the hash check can catch it.
    const info = await readFile(path.join(cacheDir, `${hash}.narinfo`), 'utf8');
    assert.match(info, /^Compression: xz$/m);
    const nar = /^URL: (.*)$/m.exec(info)![1]!;
    await writeFile(path.join(cacheDir, nar), (await execFileP('sh', ['-c', `nix-store --dump ${installed} | xz`], { encoding: 'buffer', maxBuffer: 64 << 20 })).stdout);
  }, /hash mismatch/i],
] as const) {
  test(`a cache that is ${what}: the job fails clearly and nothing is switched`, { skip }, async () => {
    const { storePath, row } = await hubBuild(what);
    assert.equal(row['result'], 'ok', JSON.stringify(row));
    await dropFromLocalStore(storePath);
    await spoil(path.basename(storePath).slice(0, 32));
    const profileBefore = await profilePath(host);
    const systemBefore = await currentSystemPath(host);
    const gens = await listGenerations(host);
    const acts = await readActivations(host);
    const r = await trigger();
    assert.equal(r.code, 1, r.out);
    assert.equal(r.end?.['outcome'], 'failure', JSON.stringify(r.end));
    assert.match(String(r.end?.['reason']), new RegExp(`^cannot substitute ${storePath.replace(/[.+?]/g, '\\$&')} from the hub cache: nix exited with status 1$`));
    assert.match(r.out, expect, r.out);
    assert.match(r.out, /rollback guard: the switch failed before changing the system or the profile; nothing to roll back/);
    assert.equal(await isValidPath(storePath), false, 'nothing untrusted entered the store');
    assert.equal(await profilePath(host), profileBefore);
    assert.equal(await currentSystemPath(host), systemBefore);
    assert.deepEqual(await listGenerations(host), gens);
    assert.deepEqual(await readActivations(host), acts);
    assert.equal(existsSync(guardFile()), false, 'the guard record is gone');
  });
}
