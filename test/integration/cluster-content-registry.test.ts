// The host registry shared by hubs (hub/cluster/registry-kv.ts) on a real
// 3-node JetStream cluster with replicas 3: an edit at one hub is seen by
// every hub; hubs racing on the registry lose nothing and never register one
// key to two hosts; two real ssh2 servers (as two hubs' agent endpoints)
// authenticate against it at once and follow key rotation and removal; the
// CLI edits it with hub.json's cluster settings and refuses clearly when NATS
// is unreachable.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import ssh2 from 'ssh2';
import { silentLogger } from '../../common/platform/log.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';
import { BentoError } from '../../common/protocol/errors.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import { addHost, changeHostKeys, normaliseKey, removeHost } from '../../hub/fleet/registry.js';
import type { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { KvRegistry } from '../../hub/cluster/registry-kv.js';
import { AgentServer } from '../../hub/server/ssh-server.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { makeKey } from '../helpers/fleet.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { clusterFleet, dropPrefix, freshPrefix, openBackend } from './cluster-content-helpers.js';

let nats: NatsCluster;
before(async () => { nats = await startNatsCluster(); });
after(() => nats?.stop());

const log = silentLogger();
const newKey = (): string => normaliseKey(generateEd25519().public);

interface Hubs { regs: KvRegistry[]; backends: NatsStateBackend[]; prefix: string; close(): Promise<void> }

async function hubs(n: number, tag: string): Promise<Hubs> {
  const prefix = freshPrefix(tag);
  const backends: NatsStateBackend[] = [];
  const regs: KvRegistry[] = [];
  for (let i = 0; i < n; i++) {
    const b = await openBackend(nats, prefix, `hub${i}`);
    backends.push(b);
    regs.push(await KvRegistry.open(b, { log }));
  }
  return {
    regs, backends, prefix,
    async close() {
      for (const r of regs) await r.close();
      for (const b of backends) await b.close();
      await dropPrefix(nats, prefix);
    },
  };
}

function settledCodes(results: Array<PromiseSettledResult<unknown>>): { won: number[]; codes: string[] } {
  return {
    won: results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : [])),
    codes: results.flatMap((r) => (r.status === 'rejected' ? [r.reason instanceof BentoError ? r.reason.code : String(r.reason)] : [])),
  };
}

test('six hubs adding different hosts at the same moment: every host lands, every hub sees all of them', async () => {
  const h = await hubs(6, 'ra');
  try {
    for (let round = 0; round < 8; round++) {
      const results = await Promise.allSettled(h.regs.map((r, i) => r.update((cur) => addHost(cur, { name: `h${round}-${i}`, keys: [newKey()], tags: [] }))));
      assert.deepEqual(settledCodes(results).codes, [], `round ${round}`);
    }
    const want = Array.from({ length: 8 }, (_, round) => h.regs.map((_, i) => `h${round}-${i}`)).flat().sort();
    for (const [i, r] of h.regs.entries()) {
      await waitFor(`hub${i} sees all 48 hosts`, () => Object.keys(r.snapshot.hosts).length === 48 || null, 15_000);
      assert.deepEqual(Object.keys((await r.refresh()).hosts).sort(), want);
    }
  } finally {
    await h.close();
  }
});

test('six hubs adding the same name, or the same key under six names: exactly one wins each round, the rest get HOST_EXISTS / KEY_IN_USE', async () => {
  const h = await hubs(6, 'rb');
  try {
    const bad: string[] = [];
    for (let round = 0; round < 6; round++) {
      const same = settledCodes(await Promise.allSettled(h.regs.map((r) => r.update((cur) => addHost(cur, { name: `same${round}`, keys: [newKey()], tags: [] })))));
      if (same.won.length !== 1 || same.codes.some((c) => c !== 'HOST_EXISTS')) bad.push(`name round ${round}: won ${same.won.join(',')}, ${same.codes.join(',')}`);
      const k = newKey();
      const key = settledCodes(await Promise.allSettled(h.regs.map((r, i) => r.update((cur) => addHost(cur, { name: `k${round}-${i}`, keys: [k], tags: [] })))));
      if (key.won.length !== 1 || key.codes.some((c) => c !== 'KEY_IN_USE')) bad.push(`key round ${round}: won ${key.won.join(',')}, ${key.codes.join(',')}`);
    }
    assert.deepEqual(bad, []);
    // No key is registered to two hosts, as every hub sees it.
    await waitFor('views agree', () => h.regs.every((r) => JSON.stringify(r.snapshot) === JSON.stringify(h.regs[0]!.snapshot)) || null, 15_000);
    const owners = new Map<string, string[]>();
    for (const [name, e] of Object.entries(h.regs[0]!.snapshot.hosts)) for (const k of e.keys) owners.set(k, [...(owners.get(k) ?? []), name]);
    assert.deepEqual([...owners.values()].filter((v) => v.length > 1), []);
  } finally {
    await h.close();
  }
});

/** An agent endpoint of one hub: a real ssh2 server authenticating against REG. */
async function endpoint(reg: KvRegistry): Promise<{ port: number; close(): Promise<void> }> {
  const server = new AgentServer({
    hostKey: Buffer.from(generateEd25519('hub').private), registry: reg, log,
    hooks: { onHello() {}, onMessage() {}, onClose() {}, heartbeatMs: () => 25_000 },
  });
  const port = await freePort();
  await server.listen('127.0.0.1', port);
  return { port, close: () => server.close() };
}

/** Does the hub at PORT let HOST in with the private key in KEYFILE? */
function canLogIn(port: number, host: string, privateKey: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const c = new ssh2.Client();
    c.on('ready', () => { c.end(); resolve(true); });
    c.on('error', () => resolve(false));
    c.connect({ host: '127.0.0.1', port, username: host, privateKey, readyTimeout: 10_000 });
  });
}

test('two hubs authenticate agents against the one registry: add at A lets the host in at B; rotation at B and removal at A hold at both', async () => {
  const h = await hubs(2, 'rc');
  const [a, b] = [await endpoint(h.regs[0]!), await endpoint(h.regs[1]!)];
  try {
    const k1 = generateEd25519('web1');
    const k2 = generateEd25519('web1-new');
    const [priv1, priv2] = [Buffer.from(k1.private), Buffer.from(k2.private)];
    assert.equal(await canLogIn(b.port, 'web1', priv1), false);
    await h.regs[0]!.update((cur) => addHost(cur, { name: 'web1', keys: [k1.public], tags: [] }));
    await waitFor('web1 admitted at hub B', () => canLogIn(b.port, 'web1', priv1), 10_000, 100);
    assert.equal(await canLogIn(a.port, 'web1', priv1), true);
    // Rotate at B: the new key works at A, then the old one stops working there.
    await h.regs[1]!.update((cur) => changeHostKeys(cur, 'web1', { add: [k2.public], remove: [] }));
    await waitFor('the new key admitted at A', () => canLogIn(a.port, 'web1', priv2), 10_000, 100);
    await h.regs[1]!.update((cur) => changeHostKeys(cur, 'web1', { add: [], remove: [fingerprintOfKeyLine(k1.public)] }));
    await waitFor('the old key refused at A', async () => !(await canLogIn(a.port, 'web1', priv1)), 10_000, 100);
    // web1's key cannot log in as another host at either hub.
    await h.regs[0]!.update((cur) => addHost(cur, { name: 'db1', keys: [newKey()], tags: [] }));
    await waitFor('db1 known at B', () => h.regs[1]!.snapshot.hosts['db1'] ?? null);
    assert.equal(await canLogIn(b.port, 'db1', priv2), false);
    // Removal at A: refused at B.
    await h.regs[0]!.update((cur) => removeHost(cur, 'web1'));
    await waitFor('web1 refused at B', async () => !(await canLogIn(b.port, 'web1', priv2)), 10_000, 100);
  } finally {
    await a.close();
    await b.close();
    await h.close();
  }
});

test('the CLI edits the cluster registry with hub.json\'s cluster settings: add-host at A, hosts and host-keys at B; NATS unreachable is CLUSTER_UNAVAILABLE and changes nothing', async () => {
  const prefix = freshPrefix('rd');
  const fa = await clusterFleet(nats, prefix, 'huba');
  const fb = await clusterFleet(nats, prefix, 'hubb');
  try {
    const web1 = await fa.addHost('web1', ['--tag', 'web']);
    const hosts = async (f: typeof fa): Promise<Array<{ name: string; fingerprints: string[]; tags: string[] }>> => {
      const r = await f.hubCli(['hosts', '--json']);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { hosts: Array<{ name: string; fingerprints: string[]; tags: string[] }> }).hosts;
    };
    const atB = await hosts(fb);
    assert.deepEqual(atB.map((x) => [x.name, x.tags, x.fingerprints]), [['web1', ['web'], [fingerprintOfKeyLine(web1.publicKey)]]]);
    // It went to NATS, not into the registry.json of either fleet.
    for (const f of [fa, fb]) assert.deepEqual(JSON.parse(await readFile(path.join(f.fleetDir, 'registry.json'), 'utf8')).hosts, {});
    // The same key under another name, at the other hub: refused.
    const dup = await fb.hubCli(['add-host', 'web2', '--key', web1.publicKey]);
    assert.equal(dup.code, 6, dup.stderr);
    assert.match(dup.stderr, /already registered to "web1".*KEY_IN_USE/);
    // Rotation at B, seen at A.
    const next = await makeKey(fb.dir, 'web1-next');
    const rot = await fb.hubCli(['host-keys', 'web1', '--add', next.publicKey, '--remove', fingerprintOfKeyLine(web1.publicKey)]);
    assert.equal(rot.code, 0, rot.stderr);
    assert.deepEqual((await hosts(fa))[0]!.fingerprints, [fingerprintOfKeyLine(next.publicKey)]);
    const rm = await fa.hubCli(['remove-host', 'web1']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(await hosts(fb), []);

    // NATS unreachable: a clear code, nothing changed, in bounded time.
    const dead = await clusterFleet(nats, prefix, 'hubc', { cluster: { servers: [`nats://127.0.0.1:${await freePort()}`], hubName: 'hubc', prefix, connectTimeoutMs: 2000 } });
    try {
      const t0 = Date.now();
      const r = await dead.hubCli(['add-host', 'web9', '--key', newKey()]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /CLUSTER_UNAVAILABLE/);
      assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
      assert.deepEqual(await hosts(fa), []);
    } finally {
      await dead.close();
    }
  } finally {
    await fa.close();
    await fb.close();
    await dropPrefix(nats, prefix);
  }
});
