// The two rules a keyed store's RecordProgress adds to its local view
// (kv-view.ts), both for nats-server 2.9.10 replicas that diverged after
// kill -9 (docs/cluster.md "Soak"):
//   - an irreversible record (an agent's outcome) that the bucket brings
//     back in an earlier state was acknowledged and then lost by NATS (such
//     a replica led the stream): the view keeps it at the revision the
//     bucket now has, watchers hear nothing, and the store is told
//     (regressed) to write it back (keepSettled);
//   - a live entry that is a later state of its record is taken even at or
//     below the view's revision, which may be in another numbering
//     (laterState).
// Only the decisions, on the record the view holds and the one the bucket
// brings: they rank two states of a record, which needs none of the view's
// bookkeeping, and the view applies them.
import type { RecordProgress, Versioned } from '../store/types.js';

/**
 * The bucket's record FOUND of a key is an earlier state of the irreversible
 * record HELD the view holds: the view keeps HELD, at FOUND's revision (the
 * bucket's numbering, so the write back can compare and swap on it). A live
 * entry counts only past the view's revision: the watch delivers in order,
 * and an older entry (the record's `running` after this hub's ack of its
 * end) is just late. A reload's entry, or the leader's record (adopt), is
 * the key's last one, in a numbering that cannot be compared.
 */
export function keepSettled<T>(progress: RecordProgress<T> | undefined, held: Versioned<T>, found: Versioned<T>, from: 'live' | 'elsewhere'): boolean {
  if (!progress || !progress.irreversible(held.value) || !progress.ahead(held.value, found.value)) return false;
  return from !== 'live' || found.revision > held.revision;
}

/**
 * A live entry FOUND at or below the view's revision of its key that is
 * nevertheless a later state of the record HELD (RecordProgress.ahead:
 * records only move forward, so it is newer in time): the view's revision is
 * in another numbering than the watch's (the leader's, taken from an ack or a
 * re-based write, on a 2.9.10 replica that numbers the stream otherwise),
 * and the revision check would ignore another hub's change (a job's end)
 * until the record changed again. The view takes it, in the watch's
 * numbering.
 */
export function laterState<T>(progress: RecordProgress<T> | undefined, held: Versioned<T>, found: Versioned<T>): boolean {
  return !!progress && held.revision >= found.revision && progress.ahead(found.value, held.value);
}
