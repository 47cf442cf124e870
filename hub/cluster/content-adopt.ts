// A hub that served alone (its registry.json, its jails) and now starts with
// a `cluster` section: what it had must not be lost, nor lock its agents out.
//
//   - Registry: if the cluster's registry is empty, this hub is the first of
//     a new cluster: every host of its registry.json is added (one by one; a
//     conflict is logged and skipped). If the cluster already has hosts,
//     registry.json is not used (a removal made in the cluster must not come
//     back from a stale file): hosts only it lists are named in a warning.
//   - Published configurations: a version this hub's jail serves from before
//     (its version.json has no cluster revision) for a host the cluster has
//     no record of becomes the cluster's, as if deployed here. A host the
//     cluster has a record of is the mirror's business: the record wins.
// Uploaded logs left in the jails move into the archive by themselves (the
// jail's scan at start); build records are rebuilt by the next build.
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

/** Seed an empty cluster registry from registry.json; returns how many hosts were added. */
export async function adoptRegistry(o: { fleetDir: string; registry: KvRegistry; log: Logger }): Promise<number> {
  let local: RegistryFile;
  try {
    local = await readRegistry(fleetPaths(o.fleetDir).registry);
  } catch (err) {
    o.log.warn({ err: (err as Error).message }, 'cannot read registry.json; not offering its hosts to the cluster');
    return 0;
  }
  const names = Object.keys(local.hosts).sort();
  if (names.length === 0) return 0;
  const cluster = o.registry.snapshot.hosts;
  if (Object.keys(cluster).length > 0) {
    const only = names.filter((n) => !(n in cluster));
    if (only.length) o.log.warn({ hosts: only.slice(0, 20), count: only.length }, 'registry.json lists hosts the cluster\'s registry does not; in a cluster registry.json is not used (add them with bento-hub add-host)');
    return 0;
  }
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
