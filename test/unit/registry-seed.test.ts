// The cluster's registry is seeded from a hub's registry.json once per
// cluster (content-adopt.ts, the marker of registry-records.ts), on the memory
// backend: found by review, seeding ran at every hub start while the registry
// was empty, so a host removed in the cluster came back, key included, from a
// stale file. The same on real NATS with real hub restarts:
// test/integration/cluster-content-reseed.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { silentLogger } from '../../common/platform/log.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';
import { addHost, normaliseKey, removeHost, type HostEntry } from '../../hub/fleet/registry.js';
import { KvRegistry, REGISTRY_KEYS_STORE, SEEDED_KEY, isKeyClaim, type KeyClaim } from '../../hub/cluster/registry-kv.js';
import { adoptRegistry } from '../../hub/cluster/content-adopt.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { authenticate } from '../../hub/server/auth.js';

const entry = (k: string): HostEntry => ({ keys: [k], tags: [], ssh: {}, addedAt: '2026-01-01T00:00:00Z' });

/**
 * A hub process's registry on the cluster's buckets (STATE outlives each
 * process), with the production update budget: two seedings racing for the
 * same hosts retry each other's conflicts, and a 300 ms budget ran out under
 * the unit group's load (36 of 40 hosts added, once).
 */
const openReg = (state: MemoryState): Promise<KvRegistry> => KvRegistry.open(new MemoryBackend(state), { log: silentLogger() });

async function withDir(hosts: Record<string, HostEntry>, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bento-seed-'));
  try {
    await writeFile(path.join(dir, 'registry.json'), JSON.stringify({ version: 1, hosts }));
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Does KP's key log in as NAME against REG (the hub's real authentication)? */
async function logsIn(reg: KvRegistry, name: string, kp: { private: string }): Promise<boolean | null> {
  const priv = ssh2.utils.parseKey(kp.private) as ssh2.ParsedKey;
  const blob = Buffer.from('data-to-sign');
  const ctx = {
    method: 'publickey', username: name, key: { algo: 'ssh-ed25519', data: priv.getPublicSSH() }, blob, signature: priv.sign(blob), hashAlgo: undefined,
    accept() { this.accepted = true; }, reject() { this.accepted = false; }, accepted: null as boolean | null,
  };
  await authenticate(ctx as never, { registry: reg, refusals: { warn() {} } as never, source: 'test' }, () => undefined);
  return ctx.accepted;
}

test('the review\'s repro: the last host, removed in the cluster, does not come back when the seeding hub restarts, and its key is refused', async () => {
  const state = new MemoryState();
  const kp = generateEd25519('web1');
  await withDir({ web1: entry(normaliseKey(kp.public)) }, async (dir) => {
    let reg = await openReg(state);
    assert.equal(await adoptRegistry({ fleetDir: dir, registry: reg, log: silentLogger(), hubName: 'hub1' }), 1);
    await reg.update((r) => removeHost(r, 'web1'));
    await reg.close();

    reg = await openReg(state); // the restart
    try {
      assert.equal(await adoptRegistry({ fleetDir: dir, registry: reg, log: silentLogger(), hubName: 'hub1' }), 0);
      assert.equal('web1' in reg.snapshot.hosts, false);
      assert.equal(await logsIn(reg, 'web1', kp), false);
    } finally {
      await reg.close();
    }
  });
});

test('a registry seeded by an older version (hosts, no marker) is marked at the next start, and is not seeded again once emptied', async () => {
  const state = new MemoryState();
  const k = normaliseKey(generateEd25519().public);
  await withDir({ web1: entry(k) }, async (dir) => {
    let reg = await openReg(state);
    await reg.update((r) => addHost(r, { name: 'web1', keys: [k], tags: [] })); // what the old seeding left: no marker
    assert.equal(await adoptRegistry({ fleetDir: dir, registry: reg, log: silentLogger(), hubName: 'hub2' }), 0);
    assert.equal(reg.seeded, true, 'marked now');
    await reg.update((r) => removeHost(r, 'web1'));
    await reg.close();
    reg = await openReg(state);
    try {
      assert.equal(await adoptRegistry({ fleetDir: dir, registry: reg, log: silentLogger(), hubName: 'hub2' }), 0);
      assert.deepEqual(Object.keys(reg.snapshot.hosts), []);
    } finally {
      await reg.close();
    }
  });
});

test('two seedings at once add every host once and leave one marker; the marker is neither a host nor a key claim', async () => {
  // One registry for both: the memory backend's instances do not see each other's writes, NATS's do
  // (two real hubs racing: test/integration/cluster-content-seed.test.ts).
  const state = new MemoryState();
  const hosts: Record<string, HostEntry> = {};
  for (let i = 0; i < 40; i++) hosts[`h${String(i).padStart(2, '0')}`] = entry(normaliseKey(generateEd25519().public));
  await withDir(hosts, async (dir) => {
    const reg = await openReg(state);
    try {
      const added = await Promise.all(['hub1', 'hub2'].map((hubName) => adoptRegistry({ fleetDir: dir, registry: reg, log: silentLogger(), hubName })));
      assert.equal(added[0]! + added[1]!, 40);
      assert.equal(reg.seeded, true);
      assert.deepEqual(Object.keys(reg.snapshot.hosts).sort(), Object.keys(hosts));
      // A host named like the marker is an ordinary host: the marker lives in the keys bucket, looked up only by its key.
      const k = normaliseKey(generateEd25519().public);
      await reg.update((r) => addHost(r, { name: SEEDED_KEY, keys: [k], tags: [] }));
      assert.ok(reg.snapshot.hosts[SEEDED_KEY]);
      await reg.update((r) => removeHost(r, SEEDED_KEY));
      assert.equal(reg.seeded, true, 'removing a host named "seeded" leaves the marker');
      const claims = await new MemoryBackend(state).openKeyed<KeyClaim>(REGISTRY_KEYS_STORE, { accept: isKeyClaim });
      assert.equal(claims.size, 40, 'one claim per key; the marker is not read as one');
    } finally {
      await reg.close();
    }
  });
});

test('an empty registry.json seeds nothing and leaves the cluster unmarked, so a hub with hosts can still bring them in', async () => {
  const state = new MemoryState();
  await withDir({}, async (dir) => {
    const reg = await openReg(state);
    try {
      assert.equal(await adoptRegistry({ fleetDir: dir, registry: reg, log: silentLogger(), hubName: 'fresh' }), 0);
      assert.equal(reg.seeded, false);
    } finally {
      await reg.close();
    }
  });
  await withDir({ web1: entry(normaliseKey(generateEd25519().public)) }, async (dir) => {
    const reg = await openReg(state);
    try {
      assert.equal(await adoptRegistry({ fleetDir: dir, registry: reg, log: silentLogger(), hubName: 'old' }), 1);
      assert.equal(reg.seeded, true);
    } finally {
      await reg.close();
    }
  });
});
