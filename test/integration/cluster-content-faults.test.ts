// NATS entirely unreachable, with two real hubs running: what still works for
// the shared content, what is refused and how, and that it all catches up
// once NATS is back (docs/cluster.md's failure table):
//   - a hub keeps authenticating agents from its registry view and its jail
//     keeps serving the last mirrored configuration;
//   - deploy is refused with CLUSTER_UNAVAILABLE, nothing published;
//   - a log uploaded meanwhile stays in the hub's jail (`logs` there shows it,
//     saying NATS is unreachable) and reaches the archive once NATS is back;
//   - `proxy` to a host another hub holds is refused (HOST_OFFLINE).
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { CLIENT_BIN, runCli, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';
import { clusterFleet, clusterSection, dropPrefix, freshPrefix } from './cluster-content-helpers.js';

let nats: NatsCluster;
let prefix: string;
let a: TestFleet;
let b: TestFleet;

// Short deadlines: refusals come within seconds, not the default 10 s per write.
const FAST = { connectTimeoutMs: 2000, requestTimeoutMs: 1000, writeTimeoutMs: 3000 };

before(async () => {
  nats = await startNatsCluster();
  prefix = freshPrefix('faults');
  const hubSettings = { publish: { buildCommand: ['true'] } };
  a = await clusterFleet(nats, prefix, 'huba', { hubSettings, cluster: clusterSection(nats, prefix, 'huba', FAST) });
  b = await clusterFleet(nats, prefix, 'hubb', { hubSettings, cluster: clusterSection(nats, prefix, 'hubb', FAST) });
  for (const f of ['hub_ed25519_key', 'hub_ed25519_key.pub']) await copyFile(path.join(a.fleetDir, f), path.join(b.fleetDir, f));
  b.fingerprint = a.fingerprint;
  await a.startHub();
  await b.startHub();
});

after(async () => {
  await a?.close();
  await b?.close();
  if (nats) {
    await nats.restartAll().catch(() => undefined);
    await dropPrefix(nats, prefix).catch(() => undefined);
  }
  await nats?.stop();
});

async function servedAt(f: TestFleet, host: string): Promise<string | null> {
  const v = JSON.parse(await readFile(path.join(f.fleetDir, 'jails', host, 'version.json'), 'utf8').catch(() => '{}')) as { hash?: string };
  return v.hash ?? null;
}

test('NATS down: B authenticates and serves from what it holds, deploy is refused, a log waits at B; NATS back: all of it catches up', async () => {
  await a.addHost('web1');
  await a.addHost('db1');
  await mkdir(path.join(a.fleetDir, 'hosts', 'web1'), { recursive: true });
  await writeFile(path.join(a.fleetDir, 'hosts', 'web1', 'configuration.nix'), '{ ... }: { system.nixos.label = "before"; }\n');
  const dep = await a.hubCli(['deploy', '--json'], 60_000);
  assert.equal(dep.code, 0, dep.stderr);
  const before_ = (JSON.parse(dep.stdout) as { hosts: Array<{ hash: string }> }).hosts[0]!.hash;
  await waitFor('B serves the deploy', async () => (await servedAt(b, 'web1')) === before_ || null, 15_000);
  const cfg = await a.agentConfig('web1', { hub: `ssh://127.0.0.1:${b.sshPort}`, autoApply: false, pullIntervalMs: 0 });
  a.startAgent('db1', await a.agentConfig('db1', { hub: `ssh://127.0.0.1:${a.sshPort}`, autoApply: false, pullIntervalMs: 0 }));
  await a.waitConnected(['db1']);

  for (let i = 0; i < nats.nodes.length; i++) await nats.kill(i);

  // A fresh connection to B: authenticated from B's registry view, served B's last mirrored version.
  const pull = await runCli(CLIENT_BIN, ['pull', '--config', cfg, '--json'], { timeoutMs: 60_000 });
  assert.equal(pull.code, 0, pull.stdout + pull.stderr);
  assert.match(pull.stdout, new RegExp(before_));

  // Deploy at A: refused, clearly, in bounded time; B still serves the old version.
  await writeFile(path.join(a.fleetDir, 'hosts', 'web1', 'configuration.nix'), '{ ... }: { system.nixos.label = "during"; }\n');
  const t0 = Date.now();
  const refused = await a.hubCli(['deploy', '--json'], 60_000);
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr + refused.stdout, /CLUSTER_UNAVAILABLE/);
  assert.ok(Date.now() - t0 < 30_000, `refused after ${Date.now() - t0} ms`);
  assert.equal(await servedAt(b, 'web1'), before_);

  // A log uploaded at B waits in B's jail; `logs` at B shows it and says why only those.
  const name = '20250203-040506_nixos-system-web1-2_g3_failure.log.gz';
  const outbox = path.join(a.dir, 'state-web1', 'pull', 'logs-outbox');
  await mkdir(outbox, { recursive: true });
  await writeFile(path.join(outbox, name), gzipSync('uploaded while NATS was down\n'));
  const up = await runCli(CLIENT_BIN, ['pull', '--config', cfg, '--json'], { timeoutMs: 60_000 });
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const atB = await b.hubCli(['logs', 'web1', '--list', '--json'], 60_000);
  assert.equal(atB.code, 0, atB.stderr);
  assert.deepEqual((JSON.parse(atB.stdout) as { logs: Array<{ name: string }> }).logs.map((l) => l.name), [name]);
  assert.match(atB.stderr, /CLUSTER_UNAVAILABLE|cannot connect to NATS/);
  assert.match(atB.stderr, /showing only the logs held at this hub/);

  // proxy at B to db1, which A holds: nobody can answer.
  const px = await b.hubCli(['proxy', 'db1', '22'], 60_000);
  assert.equal(px.code, 3, px.stderr);
  assert.match(px.stderr, /HOST_OFFLINE/);

  await nats.restartAll();

  // The log reaches the archive (B retries), and A's `logs` shows it.
  const atA = await waitFor('the log listed at A', async () => {
    const r = await a.hubCli(['logs', 'web1', '--list', '--json']);
    const logs = r.code === 0 ? (JSON.parse(r.stdout) as { logs: Array<{ name: string }> }).logs : [];
    return logs.some((l) => l.name === name) ? logs : null;
  }, 60_000, 500);
  assert.deepEqual(atA.map((l) => l.name), [name]);
  const shown = await a.hubCli(['logs', 'web1', name]);
  assert.equal(shown.stdout, 'uploaded while NATS was down\n');
  // Deploy works again and B follows.
  const again = await a.hubCli(['deploy', '--json'], 60_000);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  const after_ = (JSON.parse(again.stdout) as { hosts: Array<{ hash: string }> }).hosts[0]!.hash;
  await waitFor('B serves the new deploy', async () => (await servedAt(b, 'web1')) === after_ || null, 30_000);
});
