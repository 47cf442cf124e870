// The cluster registry's logic (hub/cluster/registry-kv.ts) on the memory
// backend: edits write only what changed, key claims follow the host records,
// a claim left behind blocks its key only until it is stale. That it holds
// between real hubs racing on NATS is test/integration/cluster-content-registry.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../common/platform/log.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import { addHost, changeHostKeys, normaliseKey, removeHost } from '../../hub/fleet/registry.js';
import { CLAIM_STALE_MS, KvRegistry, REGISTRY_KEYS_STORE, isHostEntry, isKeyClaim, type KeyClaim } from '../../hub/cluster/registry-kv.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { adoptRegistry } from '../../hub/cluster/content-adopt.js';

const key = (): string => normaliseKey(generateEd25519().public);

async function open(state = new MemoryState(), o: { offset?: () => number; budgetMs?: number } = {}): Promise<{ reg: KvRegistry; backend: MemoryBackend }> {
  const backend = new MemoryBackend(state);
  const reg = await KvRegistry.open(backend, { log: silentLogger(), now: () => Date.now() + (o.offset?.() ?? 0), updateBudgetMs: o.budgetMs ?? 300 });
  return { reg, backend };
}

async function claimsOf(backend: MemoryBackend): Promise<Map<string, string>> {
  const claims = await backend.openKeyed<KeyClaim>(REGISTRY_KEYS_STORE, { accept: isKeyClaim });
  return new Map([...claims.keys()].map((k) => [k, claims.get(k)!.host]));
}

test('add, change keys, remove: the view follows and every key is claimed by exactly its host', async () => {
  const { reg, backend } = await open();
  const [k1, k2, k3] = [key(), key(), key()];
  await reg.update((r) => addHost(r, { name: 'web1', keys: [k1], tags: ['web'] }));
  await reg.update((r) => addHost(r, { name: 'db1', keys: [k2], tags: [] }));
  assert.deepEqual(Object.keys((await reg.refresh()).hosts).sort(), ['db1', 'web1']);
  assert.deepEqual(await claimsOf(backend), new Map([[fingerprintOfKeyLine(k1), 'web1'], [fingerprintOfKeyLine(k2), 'db1']]));

  // Rotation: the new key is claimed, the old one released.
  await reg.update((r) => changeHostKeys(r, 'web1', { add: [k3], remove: [fingerprintOfKeyLine(k1)] }));
  assert.deepEqual(reg.snapshot.hosts['web1']!.keys, [k3]);
  assert.deepEqual(await claimsOf(backend), new Map([[fingerprintOfKeyLine(k3), 'web1'], [fingerprintOfKeyLine(k2), 'db1']]));
  // The released key can go to another host now.
  await reg.update((r) => addHost(r, { name: 'app1', keys: [k1], tags: [] }));

  await reg.update((r) => removeHost(r, 'db1'));
  assert.equal('db1' in reg.snapshot.hosts, false);
  assert.equal((await claimsOf(backend)).has(fingerprintOfKeyLine(k2)), false);
  await reg.close();
});

test('edits are refused with the file registry\'s codes and change nothing', async () => {
  const { reg } = await open();
  const k1 = key();
  await reg.update((r) => addHost(r, { name: 'web1', keys: [k1], tags: [] }));
  const before = JSON.stringify(reg.snapshot);
  await assert.rejects(reg.update((r) => addHost(r, { name: 'web1', keys: [key()], tags: [] })), { code: 'HOST_EXISTS' });
  await assert.rejects(reg.update((r) => addHost(r, { name: 'web2', keys: [k1], tags: [] })), { code: 'KEY_IN_USE' });
  await assert.rejects(reg.update((r) => removeHost(r, 'nosuch')), { code: 'UNKNOWN_HOST' });
  assert.equal(JSON.stringify(reg.snapshot), before);
  await reg.close();
});

test('fn gets a copy: changing its argument does not change the view', async () => {
  const { reg } = await open();
  await reg.update((r) => addHost(r, { name: 'web1', keys: [key()], tags: [] }));
  await assert.rejects(reg.update((r) => {
    r.hosts['web1']!.tags.push('sneaky');
    throw new Error('changed my mind');
  }), /changed my mind/);
  assert.deepEqual(reg.snapshot.hosts['web1']!.tags, []);
  await reg.close();
});

test('a key claimed by an add-host that never finished blocks the key until the claim is stale, then is taken over', async () => {
  let offset = 0;
  const state = new MemoryState();
  const k = key();
  // Another hub claimed k for "ghost" and died before writing ghost's record.
  const other = new MemoryBackend(state);
  const claims = await other.openKeyed<KeyClaim>(REGISTRY_KEYS_STORE, { accept: isKeyClaim });
  await claims.set(fingerprintOfKeyLine(k), { host: 'ghost', at: new Date().toISOString() });
  await other.close();
  const { reg, backend } = await open(state, { offset: () => offset });
  // Young: it may be an add-host still in progress; after the update budget the CLI says so.
  await assert.rejects(reg.update((r) => addHost(r, { name: 'web1', keys: [k], tags: [] })), { code: 'STATE_CONFLICT', message: /being registered to "ghost"/ });
  assert.equal('web1' in reg.snapshot.hosts, false);
  offset = CLAIM_STALE_MS + 1000;
  await reg.update((r) => addHost(r, { name: 'web1', keys: [k], tags: [] }));
  assert.deepEqual(reg.snapshot.hosts['web1']?.keys, [k]);
  assert.equal((await claimsOf(backend)).get(fingerprintOfKeyLine(k)), 'web1');
  await reg.close();
});

test('a claim whose host holds the key is KEY_IN_USE at once, whatever its age', async () => {
  let offset = 0;
  const { reg } = await open(new MemoryState(), { offset: () => offset });
  const k = key();
  await reg.update((r) => addHost(r, { name: 'web1', keys: [k], tags: [] }));
  offset = CLAIM_STALE_MS * 10;
  // An edit that skips addHost's own check (as a hub whose view missed web1 would pass it): the claim refuses.
  const entry = { keys: [k], tags: [], ssh: {}, addedAt: new Date().toISOString() };
  await assert.rejects(reg.update((r) => ({ ...r, hosts: { ...r.hosts, web2: entry } })), { code: 'KEY_IN_USE', message: /registered to "web1"/ });
  assert.equal('web2' in reg.snapshot.hosts, false);
  await reg.close();
});

test('records from the bucket are validated: a malformed host record reads as absent', () => {
  const good = { keys: [key()], tags: ['web'], ssh: {}, addedAt: new Date().toISOString() };
  assert.equal(isHostEntry('web1', good), true);
  assert.equal(isHostEntry('Web_1', good), false);
  assert.equal(isHostEntry('web1', { ...good, keys: [] }), false);
  assert.equal(isHostEntry('web1', { ...good, keys: ['ssh-ed25519 AAAA\nevil'] }), false);
  assert.equal(isHostEntry('web1', { ...good, tags: ['Bad Tag'] }), false);
  assert.equal(isHostEntry('web1', { ...good, ssh: null }), false);
  assert.equal(isKeyClaim('SHA256:abc', { host: 'web1', at: 'x' }), true);
  assert.equal(isKeyClaim('web1', { host: 'web1', at: 'x' }), false);
});

test('seeding an empty cluster from registry.json reads each record a bounded number of times (linear, was quadratic), adds every host and its key claim once, and leaves a host the cluster has alone', async () => {
  const backend = new MemoryBackend(new MemoryState());
  let reads = 0;
  // The registry's stores, counting every read of a record.
  const counting = {
    openKeyed: async <T>(name: string, o: { accept: (key: string, value: unknown) => value is T }) => {
      const s = await backend.openKeyed<T>(name, o);
      return new Proxy(s, {
        get(t, p) {
          const v = Reflect.get(t, p, t) as unknown;
          if (typeof v !== 'function') return v;
          return (...a: unknown[]) => { if (p === 'get' || p === 'entry') reads++; return (v as (...x: unknown[]) => unknown).apply(t, a); };
        },
      });
    },
  };
  const reg = await KvRegistry.open(counting, { log: silentLogger(), updateBudgetMs: 300 });
  const dir = await mkdtemp(path.join(tmpdir(), 'bento-adopt-'));
  try {
    const N = 400;
    const hosts: Record<string, unknown> = {};
    for (let i = 0; i < N; i++) hosts[`h${String(i).padStart(4, '0')}`] = { keys: [key()], tags: [], ssh: {}, addedAt: new Date().toISOString() };
    await writeFile(path.join(dir, 'registry.json'), JSON.stringify({ version: 1, hosts }));
    assert.equal(await adoptRegistry({ fleetDir: dir, registry: reg, log: silentLogger() }), N);
    assert.equal(Object.keys(reg.snapshot.hosts).length, N);
    assert.equal((await claimsOf(backend)).size, N, 'one key claim per host');
    // Per host: the record, its key claim, the watch's copy into the view. Copying the whole registry per host read N*N/2 = 80,000.
    assert.ok(reads <= N * 8, `${reads} record reads for ${N} hosts`);
    // The cluster has hosts now: registry.json is not used again, and a present host is not changed.
    const before = reg.snapshot.hosts['h0000'];
    assert.equal(await reg.addIfAbsent('h0000', { keys: [key()], tags: ['x'], ssh: {}, addedAt: 'later' }), false);
    assert.equal(reg.snapshot.hosts['h0000'], before);
    assert.equal(await adoptRegistry({ fleetDir: dir, registry: reg, log: silentLogger() }), 0);
  } finally {
    await reg.close();
    await rm(dir, { recursive: true, force: true });
  }
});
