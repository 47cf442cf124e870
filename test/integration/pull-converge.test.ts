// Issue 4: agents converge on what `bento-hub deploy` published, without a
// trigger: on connect, on the timer over the tunnel, and on the timer over a
// connection of their own while the tunnel is down. autoApply off waits for a
// trigger. Logs are uploaded after every job and readable with `bento-hub logs`.
// Flake inputs are updated on a schedule and rebuilt only when the lock changed.
// Also measures the bytes one no-change poll costs, over the tunnel and fresh.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readlink, writeFile, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { TestFleet, CLIENT_BIN, runCli } from '../helpers/fleet.js';
import { sleep, waitFor, type Daemon } from '../helpers/proc.js';
import {
  makeNixEnv, nixAvailable, nixUnavailableReason, writeFixtureConfig, writeFlakeLikeDir, fixtureExpression, currentSystemPath, readActivations, type NixEnv,
} from '../fixtures/nix.js';
import { startMicrosocks } from '../fixtures/proxies.js';
import { readPublished } from '../../hub/publish/published.js';
import { validateClientConfig } from '../../client/config.js';
import { HubConnection } from '../../client/net/hub-connection.js';
import { ConfigPuller } from '../../client/pull/puller.js';
import { meterStream } from '../../client/pull/connect.js';
import { silentLogger } from '../../common/platform/log.js';
import { PROTOCOL_VERSION } from '../../common/protocol/version.js';
import { durableHostState } from '../helpers/state.js';

const skip = nixAvailable() ? false : nixUnavailableReason();
let fleet: TestFleet;
let hostsDir: string;

before(async () => {
  if (skip) return;
  fleet = await TestFleet.create({ hubSettings: { publish: { buildCommand: ['true'] } } });
  hostsDir = path.join(fleet.fleetDir, 'hosts');
});
after(async () => { await fleet?.close(); });

interface Host { name: string; nix: NixEnv; stateDir: string; configDir: string; cfgFile: string; agent: Daemon | null }

async function host(name: string, extra: Record<string, unknown> = {}, flake = false): Promise<Host> {
  await fleet.addHost(name);
  const nix = await makeNixEnv(path.join(fleet.dir, `nix-${name}`));
  const stateDir = path.join(fleet.dir, `state-${name}`);
  const configDir = path.join(stateDir, 'config');
  const cfgFile = await fleet.agentConfig(name, {
    ...(flake ? { flake: `${configDir}#${name}` } : { configuration: path.join(configDir, 'configuration.nix') }),
    rebuildEnv: nix.env, currentSystem: nix.currentSystem, systemProfile: nix.profile,
    rollback: false, pullIntervalMs: 1000, pullJitterMs: 200, ...extra,
  });
  return { name, nix, stateDir, configDir, cfgFile, agent: null };
}

async function deploy(name: string): Promise<string> {
  const r = await fleet.hubCli(['deploy', name]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return (await readPublished(fleet.fleetDir, name))!.hash;
}

const running = async (h: Host): Promise<string> => (await currentSystemPath(h.nix)) ?? '';

async function logList(name: string): Promise<Array<{ name: string; outcome: string; generation: number | null; system: string }>> {
  const r = await fleet.hubCli(['logs', name, '--list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { logs: Array<{ name: string; outcome: string; generation: number | null; system: string }> }).logs;
}

async function listed(name: string): Promise<{ configHash: string | null } | undefined> {
  return (await fleet.list()).find((c) => c.name === name) as { configHash: string | null } | undefined;
}

test('a connected host converges on a deploy by itself (timer over the tunnel), reports the hash and uploads its log', { skip }, async () => {
  const h = await host('web1');
  h.agent = fleet.startAgent('web1', h.cfgFile);
  await fleet.startHub();
  await fleet.waitConnected(['web1']);
  assert.equal((await listed('web1'))?.configHash, null, 'nothing applied yet');

  await writeFixtureConfig(path.join(hostsDir, 'web1', 'configuration.nix'), { host: 'web1', label: 'v1', outputLines: 3 });
  const hash = await deploy('web1');
  await waitFor('web1 runs v1', async () => (await running(h)).endsWith('-nixos-system-web1-v1'), 20_000, 100);
  assert.equal(await readlink(h.configDir), path.join(h.stateDir, 'pull', 'versions', hash), 'configDir points at the verified version');
  // The hub learns the applied hash from job.end, without a reconnect.
  await waitFor('list shows the applied hash', async () => (await listed('web1'))?.configHash === hash, 10_000, 100);
  const hostState = await durableHostState(fleet.fleetDir, 'web1');
  assert.equal(hostState?.configHash, hash);

  // The log: compressed, named like upstream's, readable with `bento-hub logs`.
  const logs = await waitFor('a log from web1', async () => { const l = await logList('web1'); return l.length ? l : null; }, 10_000, 100);
  assert.equal(logs.length, 1);
  assert.match(logs[0]!.name, /^\d{8}-\d{6}_[a-z0-9]{32}-nixos-system-web1-v1_g1_success\.log\.gz$/);
  assert.equal(logs[0]!.generation, 1);
  const shown = await fleet.hubCli(['logs', 'web1']);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`# config ${hash}; outcome success`));
  assert.match(shown.stdout, /TEST STAND-IN for nixos-rebuild/);
  assert.match(shown.stdout, /build step 3\/3/);
  assert.match(h.agent.output(), /"reason":"(timer|connect)".*installed a new published configuration/);

  // No change: polls keep coming, nothing is rebuilt.
  const acts = (await readActivations(h.nix)).length;
  await sleep(2500);
  assert.equal((await readActivations(h.nix)).length, acts, 'an unchanged config is not rebuilt');
});

test('autoApply off: the new config is fetched and kept ready, and applied only by a trigger', { skip }, async () => {
  if (!fleet.hub) await fleet.startHub();
  const h = await host('app1', { autoApply: false });
  await writeFixtureConfig(path.join(hostsDir, 'app1', 'configuration.nix'), { host: 'app1', label: 'v1' });
  const hash = await deploy('app1');
  h.agent = fleet.startAgent('app1', h.cfgFile);
  await fleet.waitConnected(['app1']);
  await sleep(2500); // the connect check and at least one timer check
  assert.equal(await running(h), '', 'nothing was activated');
  assert.equal(await readlink(h.configDir).catch(() => null), null, 'configDir is not swapped without a trigger');
  const st = JSON.parse(await readFile(path.join(h.stateDir, 'pull', 'state.json'), 'utf8')) as { ready: string };
  assert.equal(st.ready, hash, 'but the verified download is ready');

  const r = await fleet.hubCli(['trigger', 'app1']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stderr + r.stdout, new RegExp(`bento: configuration ${hash} installed \\(was none\\)`));
  assert.match(await running(h), /-nixos-system-app1-v1$/);
  await waitFor('list shows the applied hash', async () => (await listed('app1'))?.configHash === hash, 10_000, 100);

  // A deploy then a trigger: the trigger builds the new version even before the timer saw it.
  await writeFixtureConfig(path.join(hostsDir, 'app1', 'configuration.nix'), { host: 'app1', label: 'v2' });
  const hash2 = await deploy('app1');
  const r2 = await fleet.hubCli(['trigger', 'app1']);
  assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  assert.match(await running(h), /-nixos-system-app1-v2$/);
  await waitFor('list shows the new hash', async () => (await listed('app1'))?.configHash === hash2, 10_000, 100);
});

test('a host offline during the deploy converges by the timer over a connection of its own', { skip }, async () => {
  // Its tunnel cannot come up (the hub is down when it starts, and its reconnect
  // backoff is 10 minutes), so only the pull timer can bring it the new config.
  // And it sits behind a SOCKS5 proxy: the pull's own connection must take the same way.
  const socks = await startMicrosocks();
  const h = await host('db1', { backoff: { initialMs: 600_000, maxMs: 600_000 }, proxy: `socks5h://127.0.0.1:${socks.port}` });
  await fleet.stopHub();
  h.agent = fleet.startAgent('db1', h.cfgFile);
  await waitFor('db1 failed its first connection', () => h.agent!.output().includes('reconnecting after backoff'), 10_000, 50);
  await writeFixtureConfig(path.join(hostsDir, 'db1', 'configuration.nix'), { host: 'db1', label: 'v1' });
  const hash = await deploy('db1');
  await fleet.startHub();
  await waitFor('db1 runs v1', async () => (await running(h)).endsWith('-nixos-system-db1-v1'), 20_000, 100);
  assert.ok(!(await fleet.list()).some((c) => c.name === 'db1'), 'db1 converged while its tunnel was still down');
  assert.match(h.agent.output(), /"reason":"timer","via":"socks5h:\/\/127\.0\.0\.1:\d+ -> ssh:\/\/127\.0\.0\.1:\d+".*installed a new published configuration/);
  assert.ok((await socks.requestedDestinations()).includes(`127.0.0.1:${fleet.sshPort}`), 'the pull went through the proxy');
  // Its log went up over a connection of its own too.
  const logs = await waitFor('a log from db1', async () => { const l = await logList('db1'); return l.length ? l : null; }, 10_000, 100);
  assert.match(logs[0]!.name, /_success\.log\.gz$/);
  // The applied hash is what it will say in its next hello.
  const applied = JSON.parse(await readFile(path.join(h.stateDir, 'pull', 'applied.json'), 'utf8')) as Array<{ hash: string }>;
  assert.equal(applied.at(-1)!.hash, hash);
  await h.agent.stop();
  await socks.stop();
});

test('flake inputs are updated on a schedule; a changed lock rebuilds (autoupdate), an unchanged one does not', { skip }, async () => {
  const lockSource = path.join(fleet.dir, 'lock-source');
  await writeFile(lockSource, '{"nodes":{"root":{}},"version":7}\n');
  const h = await host('fl1', { flakeUpdateIntervalMs: 1000, flakeUpdateCommand: ['sh', '-c', `cat ${lockSource} > flake.lock`] }, true);
  const dir = path.join(hostsDir, 'fl1');
  await writeFlakeLikeDir(dir, [{ host: 'fl1', label: 'v1' }]);
  // The system depends on flake.lock, as a real one depends on its locked inputs.
  const expr = fixtureExpression({ host: 'fl1', label: 'v1', nonce: 'LOCK' }).replace('nonce = "LOCK";', 'nonce = builtins.readFile ../flake.lock;');
  await writeFile(path.join(dir, 'hosts', 'fl1.nix'), expr);
  await writeFile(path.join(dir, 'flake.nix'), '{ outputs = { self }: { }; }\n');
  await writeFile(path.join(dir, 'flake.lock'), await readFile(lockSource));
  await mkdir(path.dirname(h.configDir), { recursive: true });
  const hubJson = path.join(fleet.fleetDir, 'hub.json');
  const hj = JSON.parse(await readFile(hubJson, 'utf8')) as { publish: Record<string, unknown> };
  hj.publish['flakeHostsCommand'] = ['nix-instantiate', '--eval', '--json', '--strict', '-E', 'builtins.attrNames (import {dir})'];
  await writeFile(hubJson, JSON.stringify(hj));
  const hash = await deploy('fl1');
  if (!fleet.hub) await fleet.startHub();
  h.agent = fleet.startAgent('fl1', h.cfgFile);
  await waitFor('fl1 runs v1', async () => (await running(h)).includes('-nixos-system-fl1-v1'), 20_000, 100);
  const first = await running(h);
  await sleep(2500); // flake updates ran with an unchanged lock
  assert.equal((await readActivations(h.nix)).length, 1, 'an unchanged lock does not rebuild');
  assert.match(h.agent.output(), /"result":"unchanged","msg":"flake input update"/);

  await writeFile(lockSource, '{"nodes":{"root":{}},"version":7,"updated":true}\n');
  await waitFor('fl1 rebuilt with the new lock', async () => (await running(h)) !== first, 20_000, 100);
  // The stand-in's switch-to-configuration repoints the current system first and
  // logs the activation after it: read the log once that second step is done.
  await waitFor('the second activation logged', async () => (await readActivations(h.nix)).length >= 2, 5_000, 50);
  assert.equal((await readActivations(h.nix)).length, 2);
  const logs = await waitFor('an autoupdate log', async () => (await logList('fl1')).find((l) => l.outcome === 'autoupdate'), 10_000, 100);
  assert.match(logs.name, /_autoupdate\.log\.gz$/);
  // The published hash is unchanged, and is still what the host says it applied.
  const applied = JSON.parse(await readFile(path.join(h.stateDir, 'pull', 'applied.json'), 'utf8')) as Array<{ hash: string; tree: string }>;
  assert.equal(applied.at(-1)!.hash, hash);
  assert.notEqual(applied.at(-1)!.tree, hash, 'the local tree differs from the published one by its lock only');
  await h.agent.stop();
});

test('bytes on the wire for one no-change poll: over the open tunnel and over a fresh connection', { skip }, async () => {
  if (!fleet.hub) await fleet.startHub();
  const h = await host('meter1');
  await writeFixtureConfig(path.join(hostsDir, 'meter1', 'configuration.nix'), { host: 'meter1', label: 'v1' });
  await deploy('meter1');
  // Fresh connection: `bento-client pull` reports the bytes at its transport stream.
  const pull = async (): Promise<{ status: string; bytesIn: number; bytesOut: number }> => {
    const r = await runCli(CLIENT_BIN, ['pull', '--config', h.cfgFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { status: string; bytesIn: number; bytesOut: number };
  };
  const installed = await pull();
  assert.equal(installed.status, 'updated');
  const fresh = await pull();
  assert.equal(fresh.status, 'unchanged');

  // Tunnel: a real agent connection (control channel + hello), metered at its stream.
  const config = validateClientConfig(JSON.parse(await readFile(h.cfgFile, 'utf8')), h.cfgFile);
  const sock = net.connect({ host: '127.0.0.1', port: fleet.sshPort });
  await new Promise((r) => sock.once('connect', r));
  const conn = new HubConnection({
    stream: sock, name: 'meter1', privateKey: await readFile(config.identityFile), hubFingerprint: fleet.fingerprint, timeoutMs: 5000,
    allowForwardPorts: [], log: silentLogger(), onMessage: () => undefined,
    hello: { protocol: PROTOCOL_VERSION, name: 'meter1', agentVersion: 'meter', system: null, generation: null, configHash: null, capabilities: [] },
  });
  const meter = meterStream(sock);
  try {
    await conn.start();
    const puller = new ConfigPuller({ config, log: silentLogger(), privateKey: await readFile(config.identityFile), tunnel: () => conn.ssh });
    await puller.init();
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      await sleep(150);
      const b0 = meter.bytesIn + meter.bytesOut;
      const r = await puller.check({ reason: 'measure', apply: true });
      assert.equal(r.status, 'unchanged');
      assert.equal(r.via, 'tunnel');
      await sleep(60); // the channel close exchange
      samples.push(meter.bytesIn + meter.bytesOut - b0);
    }
    const tunnel = Math.min(...samples);
    const freshTotal = fresh.bytesIn + fresh.bytesOut;
    console.log(`# no-change poll: tunnel ${tunnel} B (samples ${samples.join(', ')}); fresh connection ${freshTotal} B (in ${fresh.bytesIn}, out ${fresh.bytesOut}); upstream ~5100 B`);
    assert.ok(tunnel < 1500, `a poll over the tunnel costs ${tunnel} B`);
    assert.ok(freshTotal < 5100, `a poll over a fresh connection costs ${freshTotal} B, less than upstream's ~5.1 kB`);
  } finally {
    conn.shutdown();
  }
});
