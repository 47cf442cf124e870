// Reading every object's metadata a batch at a time (hub/cluster/object-scan.ts,
// what `cluster sweep` walks) on a real 3-node JetStream cluster with
// replicas 3: each object comes exactly once, as the client library's own
// ObjectStore.list() has them; deleting each object as it comes (what the
// sweep does) neither repeats nor extends the scan; an empty store and a
// store of deleted objects end at once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import type { ObjectMeta } from '../../hub/cluster/object-scan.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { dropPrefix, freshPrefix, openBackend } from './cluster-content-helpers.js';

let nats: NatsCluster;
let prefix: string;
let backend: NatsStateBackend;
before(async () => {
  nats = await startNatsCluster();
  prefix = freshPrefix('scan');
  backend = await openBackend(nats, prefix, 'huba');
});
after(async () => {
  await backend?.close();
  if (nats) await dropPrefix(nats, prefix);
  await nats?.stop();
});

async function fill(store: string, n: number): Promise<string[]> {
  const objects = await backend.openObjectStore(store);
  const names = Array.from({ length: n }, (_, i) => `web${i % 50}/obj-${String(i).padStart(4, '0')}`);
  for (let i = 0; i < names.length; i += 50) {
    await Promise.all(names.slice(i, i + 50).map((name) => objects.putBlob({ name }, new TextEncoder().encode(`content of ${name}`))));
  }
  return names.sort();
}

async function collect(it: AsyncIterable<ObjectMeta>, each?: (m: ObjectMeta) => Promise<void>): Promise<ObjectMeta[]> {
  const seen: ObjectMeta[] = [];
  for await (const m of it) {
    seen.push(m);
    await each?.(m);
  }
  return seen;
}

test('700 objects read 64 at a time: each exactly once, with its size and time, as ObjectStore.list() has them', async () => {
  const names = await fill('many', 700);
  const seen = await collect(backend.scanObjects('many', { batch: 64 }));
  assert.equal(seen.length, 700);
  assert.deepEqual(seen.map((m) => m.name).sort(), names);
  const listed = await (await backend.openObjectStore('many')).list();
  const byName = new Map(listed.map((o) => [o.name, o]));
  for (const m of seen) {
    const o = byName.get(m.name)!;
    assert.deepEqual([m.size, m.mtime, m.deleted], [o.size, o.mtime, false], m.name);
  }
});

test('deleting each object as it is read (the sweep) neither repeats nor extends the scan; objects added meanwhile end it', async () => {
  const names = await fill('churn', 300);
  const objects = await backend.openObjectStore('churn');
  const seen = await collect(backend.scanObjects('churn', { batch: 32 }), async (m) => {
    await objects.delete(m.name);
  });
  assert.deepEqual(seen.map((m) => m.name).sort(), names, 'every object once, none twice');
  assert.ok(seen.every((m) => !m.deleted));
  assert.equal((await objects.list()).filter((o) => !o.deleted).length, 0);

  // Only delete markers now: they come flagged, once each.
  const markers = await collect(backend.scanObjects('churn', { batch: 32 }));
  assert.equal(markers.length, 300);
  assert.ok(markers.every((m) => m.deleted));

  // Writers during a scan: the scan ends (what came after it started is the next sweep's).
  await fill('busy', 100);
  const busy = await backend.openObjectStore('busy');
  let added = 0;
  const during = await collect(backend.scanObjects('busy', { batch: 16 }), async () => {
    if (added < 200) await busy.putBlob({ name: `new/obj-${added++}` }, new TextEncoder().encode('x'));
  });
  assert.ok(added > 0);
  assert.deepEqual(during.map((m) => m.name).filter((n) => n.startsWith('web')).length, 100, 'every object there at the start was read');
  assert.deepEqual(during.filter((m) => m.name.startsWith('new/')), [], 'nothing written after the start');
});

test('an empty object store ends the scan at once', async () => {
  await backend.openObjectStore('empty');
  const t0 = Date.now();
  assert.deepEqual(await collect(backend.scanObjects('empty')), []);
  assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
});
