// A hub that served alone (its registry.json, its jails) and now starts with
// a `cluster` section: what it had must not be lost, nor lock its agents out.
//
//   - Registry: seeded once per cluster. If the cluster's registry was never
//     seeded (no marker, registry-records.ts) and is empty, this hub is the
//     first of a new cluster: every host of its registry.json is added (one
//     by one; a conflict is logged and skipped), then the marker is created.
//     Once the marker exists registry.json is never used again, even when the
//     registry is empty (every host removed): a removal made in the cluster
//     must not come back from a stale file (found by review: seeding ran at
//     every start while the registry was empty). A registry with hosts but no
//     marker (seeded by an older version, or hosts added at another hub) is
//     seeded: the marker is created then. Hosts only the file lists are named
//     in a warning.
//   - Published configurations: a version this hub's jail serves from before
//     (its version.json has no cluster revision) for a host the cluster has
//     no record of becomes the cluster's, as if deployed here. A host the
//     cluster has a record of is the mirror's business: the record wins.
//     This needs no marker: nothing deletes a published record in a cluster,
//     and an adopted jail's version.json is stamped with the record's
//     revision, so it is never offered again.
// Uploaded logs left in the jails move into the archive by themselves (the
// jail's scan at start) and are deleted from the jail once moved, so they
// are moved once; build records are rebuilt by the next build.
import { readdir } from 'node:fs/promises';
import type { Logger } from '../../common/platform/log.js';
import { inPool } from '../../common/platform/pool.js';
import { isHostName } from '../../common/protocol/names.js';
import { fleetPaths } from '../fleet/paths.js';
import { readRegistry, type RegistryFile } from '../fleet/registry.js';
import { jailsDir } from '../publish/layout.js';
import { readVersionFile } from '../publish/published.js';
import type { KvPublishedStore } from './published-kv.js';
import { hasTree } from './published-kv.js';
import type { KvRegistry } from './registry-kv.js';

/** Seed a never-seeded, empty cluster registry from registry.json; returns how many hosts were added. */
export async function adoptRegistry(o: { fleetDir: string; registry: KvRegistry; log: Logger; hubName?: string }): Promise<number> {
  const by = o.hubName ?? 'unknown';
  let local: RegistryFile;
  try {
    local = await readRegistry(fleetPaths(o.fleetDir).registry);
  } catch (err) {
    o.log.warn({ err: (err as Error).message }, 'cannot read registry.json; not offering its hosts to the cluster');
    // Still mark a registry with hosts: the file being unreadable today must not let it seed an emptied registry later.
    if (!o.registry.seeded && Object.keys(o.registry.snapshot.hosts).length > 0) await o.registry.markSeeded(by);
    return 0;
  }
  const names = Object.keys(local.hosts).sort();
  const cluster = o.registry.snapshot.hosts;
  if (o.registry.seeded || Object.keys(cluster).length > 0) {
    // Hosts but no marker: seeded by an older version (or a hub seeding right now, which goes on: it checks only at its start).
    if (!o.registry.seeded) await o.registry.markSeeded(by);
    const only = names.filter((n) => !(n in cluster));
    if (only.length) o.log.warn({ hosts: only.slice(0, 20), count: only.length }, 'registry.json lists hosts the cluster\'s registry does not; in a cluster registry.json is not used (add them with bento-hub add-host)');
    return 0;
  }
  if (names.length === 0) return 0; // nothing seeded: a hub that has hosts may still bring them in
  let added = 0;
  // Hosts are independent records: ADOPT_IN_FLIGHT at a time, so seeding
  // 45,000 hosts takes round trips / ADOPT_IN_FLIGHT, not one after another.
  await inPool(names, ADOPT_IN_FLIGHT, async (name) => {
    try {
      if (await o.registry.addIfAbsent(name, local.hosts[name]!)) added++;
    } catch (err) {
      o.log.warn({ host: name, err: (err as Error).message }, 'could not add a host of registry.json to the cluster\'s registry');
    }
  });
  o.log.info({ hosts: added }, 'the cluster\'s registry was empty: added the hosts of this hub\'s registry.json');
  // Only after the hosts (a hub starting meanwhile sees hosts and does not seed), and only if some landed:
  // a seeding that failed for every host (NATS away) is tried again at the next start. Two hubs seeding
  // at once both get here; the second's create finds the marker, which is fine. ADDED counts this hub's
  // acknowledged writes: the snapshot follows the bucket's watch and may not show them yet (then no
  // marker was written and a restart seeded the emptied registry again: seen once in cluster-content-reseed).
  if (added > 0 || Object.keys(o.registry.snapshot.hosts).length > 0) await o.registry.markSeeded(by);
  return added;
}

const ADOPT_IN_FLIGHT = 32;

/** Offer the versions this hub's jails served before it joined the cluster; returns how many became the cluster's. */
export async function adoptPublished(o: { fleetDir: string; published: KvPublishedStore; log: Logger }): Promise<number> {
  let adopted = 0;
  for (const host of (await readdir(jailsDir(o.fleetDir)).catch(() => [] as string[])).sort()) {
    if (!isHostName(host) || o.published.records.has(host)) continue;
    const v = await readVersionFile(o.fleetDir, host).catch(() => null);
    if (!v || v.revision !== undefined || !(await hasTree(o.fleetDir, host, v.hash))) continue;
    try {
      if (await o.published.adopt(host, v)) adopted++;
    } catch (err) {
      o.log.warn({ host, err: (err as Error).message }, 'could not offer this hub\'s published configuration to the cluster; the jail keeps serving it');
    }
  }
  if (adopted) o.log.info({ hosts: adopted }, 'published configurations this hub served before it joined the cluster are the cluster\'s now');
  return adopted;
}
