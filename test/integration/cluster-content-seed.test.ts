// Two hubs that served alone with the same registry.json join a new, empty
// cluster at the same moment: both seed it (content-adopt.ts, one record per
// host, several in flight), and every host lands exactly once, with its key,
// the same at both hubs. The seeding used to be one whole-registry edit per
// host (quadratic: the 45,000-agent bench's hubs did not start in 120 s);
// the unit test cluster-registry counts its reads, this one races it on NATS.
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { TestFleet } from '../helpers/fleet.js';
import { clusterSection, dropPrefix, freshPrefix } from './cluster-content-helpers.js';

const HOSTS = Array.from({ length: 24 }, (_, i) => `h${String(i).padStart(2, '0')}`);
let nats: NatsCluster;
let prefix: string;
const fleets: TestFleet[] = [];

before(async () => {
  nats = await startNatsCluster();
  prefix = freshPrefix('seed');
});

after(async () => {
  for (const f of fleets) await f.close();
  if (nats) await dropPrefix(nats, prefix).catch(() => undefined);
  await nats?.stop();
});

async function joinCluster(f: TestFleet, hubName: string): Promise<void> {
  const hubJson = path.join(f.fleetDir, 'hub.json');
  const settings = JSON.parse(await readFile(hubJson, 'utf8')) as Record<string, unknown>;
  settings['cluster'] = clusterSection(nats, prefix, hubName);
  await writeFile(hubJson, JSON.stringify(settings));
}

async function hostsAt(f: TestFleet): Promise<Array<{ name: string; fingerprints: string[] }>> {
  const r = await f.hubCli(['hosts', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { hosts: Array<{ name: string; fingerprints: string[] }> }).hosts;
}

test('two hubs seeding an empty cluster at once from the same registry.json add every host once, with its key, seen alike at both', async () => {
  const a = await TestFleet.create();
  fleets.push(a);
  const keys = new Map<string, string>();
  for (const h of HOSTS) keys.set(h, fingerprintOfKeyLine((await a.addHost(h)).publicKey));
  const b = await TestFleet.create();
  fleets.push(b);
  for (const f of ['registry.json', 'hub_ed25519_key', 'hub_ed25519_key.pub']) await copyFile(path.join(a.fleetDir, f), path.join(b.fleetDir, f));
  await joinCluster(a, 'huba');
  await joinCluster(b, 'hubb');

  await Promise.all([a.startHub(), b.startHub()]);

  // Each host was written by exactly one of them (the other's create lost and found it there).
  const added = [a, b].map((f) => {
    const m = /"hosts":(\d+),"msg":"the cluster's registry was empty/.exec(f.hub!.output());
    return m ? Number(m[1]) : 0;
  });
  assert.equal(added[0]! + added[1]!, HOSTS.length, `hosts added by each hub: ${added.join(' + ')}`);
  for (const f of [a, b]) {
    const hosts = await hostsAt(f);
    assert.deepEqual(hosts.map((h) => h.name).sort(), HOSTS);
    for (const h of hosts) assert.deepEqual(h.fingerprints, [keys.get(h.name)], `${h.name}: its one key`);
  }
  assert.doesNotMatch(a.hub!.output() + b.hub!.output(), /could not add a host of registry.json/);
});
