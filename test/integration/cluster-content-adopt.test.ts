// A hub that served alone joins a new cluster (a `cluster` section added to
// its hub.json): its hosts, published configurations and uploaded logs become
// the cluster's, so no agent is locked out and nothing is lost; and a host
// removed in the cluster does not come back from its stale registry.json.
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { CLIENT_BIN, runCli, TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';
import { clusterFleet, clusterSection, dropPrefix, freshPrefix, hostsAt } from './cluster-content-helpers.js';

let nats: NatsCluster;
let prefix: string;
let a: TestFleet;
let b: TestFleet;

before(async () => {
  nats = await startNatsCluster();
  prefix = freshPrefix('adopt');
});

after(async () => {
  await a?.close();
  await b?.close();
  if (nats) await dropPrefix(nats, prefix).catch(() => undefined);
  await nats?.stop();
});

test('a single hub joins a new cluster with its hosts, its published configurations and its logs; a host removed in the cluster stays removed', async () => {
  // A single hub, with hosts, a deploy and an uploaded log.
  a = await TestFleet.create({ hubSettings: { publish: { buildCommand: ['true'] } } });
  await a.addHost('web1');
  await a.addHost('db1');
  await mkdir(path.join(a.fleetDir, 'hosts', 'web1'), { recursive: true });
  await writeFile(path.join(a.fleetDir, 'hosts', 'web1', 'configuration.nix'), '{ ... }: { system.nixos.label = "from-before"; }\n');
  const dep = await a.hubCli(['deploy', '--json'], 60_000);
  assert.equal(dep.code, 0, dep.stderr);
  const hash = (JSON.parse(dep.stdout) as { hosts: Array<{ hash: string }> }).hosts[0]!.hash;
  const logName = '20240506-070809_nixos-system-web1-3_g2_success.log.gz';
  await writeFile(path.join(a.fleetDir, 'jails', 'web1', 'logs', logName), gzipSync('a log from the single-hub days\n'));

  // It joins a cluster.
  const hubJson = path.join(a.fleetDir, 'hub.json');
  const settings = JSON.parse(await readFile(hubJson, 'utf8')) as Record<string, unknown>;
  settings['cluster'] = clusterSection(nats, prefix, 'huba');
  await writeFile(hubJson, JSON.stringify(settings));
  await a.startHub();
  assert.match(a.hub!.output(), /the cluster's registry was empty: added the hosts of this hub's registry.json/);

  // A second hub sees all of it: the hosts, the configuration (mirrored), the log.
  b = await clusterFleet(nats, prefix, 'hubb', { hubSettings: { publish: { buildCommand: ['true'] } } });
  for (const f of ['hub_ed25519_key', 'hub_ed25519_key.pub']) await copyFile(path.join(a.fleetDir, f), path.join(b.fleetDir, f));
  await b.startHub();
  assert.deepEqual((await hostsAt(b)).sort(), ['db1', 'web1']);
  await waitFor('B serves web1\'s configuration from before', async () => {
    const v = JSON.parse(await readFile(path.join(b.fleetDir, 'jails', 'web1', 'version.json'), 'utf8').catch(() => '{}')) as { hash?: string };
    return v.hash === hash || null;
  }, 15_000);
  const cfg = await a.agentConfig('web1', { hub: `ssh://127.0.0.1:${b.sshPort}`, autoApply: false, pullIntervalMs: 0 });
  const pull = await runCli(CLIENT_BIN, ['pull', '--config', cfg, '--json'], { timeoutMs: 60_000 });
  assert.equal(pull.code, 0, pull.stdout + pull.stderr);
  assert.match(pull.stdout, new RegExp(hash));
  const logs = await waitFor('the old log listed at B', async () => {
    const r = await b.hubCli(['logs', 'web1', '--list', '--json']);
    const l = (JSON.parse(r.stdout || '{"logs":[]}') as { logs: Array<{ name: string }> }).logs;
    return l.length ? l : null;
  }, 20_000, 200);
  assert.deepEqual(logs.map((l) => l.name), [logName]);

  // db1 is removed in the cluster; A restarts with its stale registry.json: db1 stays removed.
  const rm = await b.hubCli(['remove-host', 'db1']);
  assert.equal(rm.code, 0, rm.stderr);
  await a.stopHub();
  await a.startHub();
  assert.deepEqual(await hostsAt(a), ['web1']);
  assert.match(a.hub!.output(), /registry.json lists hosts the cluster's registry does not/);
});
