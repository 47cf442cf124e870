// The cluster's registry is seeded from a hub's registry.json once per
// cluster, not at every start while it is empty (found by review): a hub
// that served alone joins a new cluster and seeds it; every host is then
// removed in the cluster; the hub restarts with its untouched registry.json.
// Before the fix that restart added them all back, keys included, and they
// authenticated again at every hub. Real 3-node NATS, real hub restarts.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { TestFleet } from '../helpers/fleet.js';
import { rawPeer } from '../helpers/raw-peer.js';
import { clusterSection, dropPrefix, freshPrefix, hostsAt } from './cluster-content-helpers.js';

let nats: NatsCluster;
let prefix: string;
let a: TestFleet | undefined;

before(async () => {
  nats = await startNatsCluster();
  prefix = freshPrefix('reseed');
});

after(async () => {
  await a?.close();
  if (nats) await dropPrefix(nats, prefix).catch(() => undefined);
  await nats?.stop();
});

/** Does HOST's key log in at F's hub? (a real SSH handshake with the host's own key) */
async function logsIn(f: TestFleet, host: string): Promise<boolean> {
  try {
    const peer = await rawPeer({ port: f.sshPort, name: host, keyPath: f.keys.get(host)!.keyPath });
    peer.end();
    return true;
  } catch {
    return false;
  }
}

test('every host removed in the cluster stays removed, and cannot log in, after the hub that seeded the cluster restarts with its old registry.json', async () => {
  a = await TestFleet.create();
  await a.addHost('web1');
  await a.addHost('db1');
  const hubJson = path.join(a.fleetDir, 'hub.json');
  const settings = JSON.parse(await readFile(hubJson, 'utf8')) as Record<string, unknown>;
  settings['cluster'] = clusterSection(nats, prefix, 'huba');
  await writeFile(hubJson, JSON.stringify(settings));

  await a.startHub();
  assert.match(a.hub!.output(), /"hosts":2,"msg":"the cluster's registry was empty: added the hosts of this hub's registry.json/);
  assert.equal(await logsIn(a, 'web1'), true, 'seeded: web1 logs in');

  // Every host removed in the cluster (compromised, decommissioned): the registry is empty.
  for (const h of ['web1', 'db1']) {
    const rm = await a.hubCli(['remove-host', h]);
    assert.equal(rm.code, 0, rm.stderr);
  }
  assert.deepEqual(await hostsAt(a), []);

  // The hub restarts (upgrade, reboot, activation); its registry.json still lists both.
  await a.stopHub();
  await a.startHub();
  assert.doesNotMatch(a.hub!.output(), /the cluster's registry was empty/);
  assert.deepEqual(await hostsAt(a), [], 'nothing came back from registry.json');
  assert.equal(await logsIn(a, 'web1'), false, 'web1\'s key is refused');
  assert.match(a.hub!.output(), /registry.json lists hosts the cluster's registry does not/);
});
