// Old deletion markers purged from the keyed stores' KV buckets (`bento-hub
// cluster sweep`). A KV delete is a message of its own (KV-Operation DEL),
// and with history 1 it stays as the key's last record for good: each job a
// host's history prunes, each host removed, each released claim leaves one.
// A fleet of 10,000 hosts with a daily job grew the jobs stream by 10,000
// markers a day, and every hub's reload of the bucket delivered all of them.
//
// A marker is purged when:
//   - the scan (marker-scan.ts, a batch at a time) finds it as its key's last
//     record, older than minAgeMs;
//   - the stream's leader still has it as the key's last record, and older
//     than minAgeMs (the scan's consumer reads one replica, which may lag or,
//     on nats-server 2.9.10 after kill -9, number the stream otherwise); its
//     sequence is the leader's;
//   - the purge is bounded by that sequence: a write of the key after the
//     look (a job id used again, a host added again) is never removed.
// Why minAgeMs is enough for the hubs: a hub whose watch is live saw the
// delete long before (it takes effect in its view when delivered, and a
// purge takes nothing away from a view); a hub whose view missed it (a watch
// on a lagging replica) is set right by its next reload, which reports every
// key it held and the reload did not deliver as deleted (kv-view-content.ts
// endReload). The stream-leader checks (kv-verify.ts) take "no record" as
// they took "deleted": the view stays as it is. A create (compare-and-swap
// on 0) meeting a marker that a sweep purges at that moment makes the write
// again (kv-rebase.ts, kv-writer.ts).
//
// Bounded: keys are read a batch at a time, at most IN_FLIGHT markers are
// looked up or purged at once, and the report is counts per bucket (and the
// first error), never a list that grows with the bucket.
import type { BucketMarkers, KeyRecord } from './marker-scan.js';

/** The keyed stores (KV buckets) of a fleet, whatever opens them: hub/store, hub/rollout, hub/topology, hub/cluster. */
export const KEYED_STORES = ['jobs', 'hosts', 'holds', 'rollouts', 'rollout-claims', 'registry', 'registry-keys', 'published', 'logs', 'builds'] as const;

/** Markers looked up at the leader or purged at once. */
const IN_FLIGHT = 8;

export interface MarkerSweepDeps extends BucketMarkers {
  /** Markers younger than this stay (a hub's watch may not have passed them yet). */
  minAgeMs: number;
  /** Count what would be purged, purge nothing. */
  dryRun: boolean;
  now?: () => number;
  inFlight?: number;
}

export interface MarkerCounts {
  /** Keys in the bucket (its last record a value or a marker). */
  keys: number;
  /** Keys whose last record is a deletion marker. */
  markers: number;
  /** Purged (with dryRun: would be). */
  purged: number;
  /** Younger than minAgeMs: kept. */
  young: number;
  /** Written again, or purged by another sweep, since the scan: nothing to purge. */
  changed: number;
  /** The lookup or the purge failed: the marker stays (a later sweep tries again). */
  failed: number;
  /** The first failure's message. */
  error?: string;
}

export async function sweepMarkers(d: MarkerSweepDeps): Promise<MarkerCounts> {
  const now = d.now ?? Date.now;
  const out: MarkerCounts = { keys: 0, markers: 0, purged: 0, young: 0, changed: 0, failed: 0 };
  const one = async (r: KeyRecord): Promise<void> => {
    try {
      const at = await d.leaderLast(r.subject);
      if (!at?.marker) { out.changed++; return; } // written again (or gone) since the scan
      if (!(now() - at.atMs >= d.minAgeMs)) { out.young++; return; } // deleted again since: a newer marker
      if (!d.dryRun && await d.purgeBelow(r.subject, at.seq + 1) === 0) { out.changed++; return; }
      out.purged++;
    } catch (err) {
      out.failed++;
      out.error ??= (err as Error).message;
    }
  };
  const running = new Set<Promise<void>>();
  for await (const r of d.scan()) {
    out.keys++;
    if (!r.marker) continue;
    out.markers++;
    // An unreadable time counts as young: never purged on a guess.
    if (!(now() - r.atMs >= d.minAgeMs)) { out.young++; continue; }
    const p = one(r).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= (d.inFlight ?? IN_FLIGHT)) await Promise.race(running);
  }
  await Promise.all(running);
  return out;
}
