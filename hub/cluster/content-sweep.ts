// Objects no record keeps (`bento-hub cluster sweep`). Shared content goes in
// as an object first and a record second: a deploy uploads a host's tree as
// HOST/HASH and then sets the host's published record (published-kv.ts); an
// uploaded log is stored as HOST/NAME and then entered in the host's manifest
// (logs-kv.ts). A hub killed between the two steps, or a delete that failed,
// leaves an object nothing refers to, which no quota counts. Such an object
// is removed here when:
//   - it is older than minAgeMs: a writer running now may be between its two
//     steps (the default leaves an hour for that);
//   - neither this process's view of the records (where it has one) nor the
//     stream leader's record keeps it: a view loaded from a replica that lags
//     (or diverged after kill -9 on nats-server 2.9.10) may lack a record,
//     and deleting content a record refers to would lose it;
//   - the leader's record, read again right before the delete, still does not
//     keep it (a deploy may have set a record reusing the object since the
//     host's first read, which is kept for the whole sweep only to say what
//     is kept);
//   - the leader's record is one this version reads (a newer hub's record
//     may keep it: such objects are reported, never removed);
//   - the object is still exactly the version scanned (object-version.ts): a
//     deploy reusing an old object refreshes it, a hub storing a log again
//     rewrites it, and either makes the delete a no-op (reported as young).
// Objects whose names are not HOST/ITEM are not Bento's and are left alone.
// Bounded: objects are read a batch at a time (object-scan.ts), and the
// report lists at most listLimit objects of each kind (its counts are whole).
import { isHostName } from '../../common/protocol/names.js';
import type { ObjectMeta } from './object-scan.js';

/** How many objects of each kind (young, removed, failed) a sweep lists by default. */
export const SWEEP_LIST_LIMIT = 1000;

export interface SweepDeps {
  objects: {
    /** Every object's metadata, once each (deleted ones flagged). */
    scan(): AsyncIterable<ObjectMeta>;
    /** Delete the object exactly as scanned; false (nothing deleted) when it was rewritten or refreshed since. */
    deleteScanned(o: ObjectMeta): Promise<boolean>;
  };
  /** Is ITEM (a hash, a log name) well-formed for this store? Other names are not Bento's. */
  isItem(item: string): boolean;
  /** Does this process's view of HOST's record keep ITEM? false also when it has no view, or no record. */
  keptInView(host: string, item: string): boolean;
  /**
   * The items HOST's record keeps, as the stream's leader has it; null when it
   * holds no record. Rejects when the leader does not answer, or the record is
   * not one this version reads. Asked once per host for what is kept, and
   * again right before each delete.
   */
  keptAtLeader(host: string): Promise<ReadonlySet<string> | null>;
  /** Objects younger than this stay (a writer may be between its object and its record). */
  minAgeMs: number;
  /** Report what would be removed, remove nothing. */
  dryRun: boolean;
  /** At most this many objects are listed in each of young, removed and failed (default 1,000); the counts are complete. */
  listLimit?: number;
  now?: number;
}

export interface SweptObject { name: string; host: string; bytes: number; ageS: number }

export interface SweepResult {
  /** Objects in the store (not counting deleted ones). */
  objects: number;
  /** Kept by a record. */
  kept: number;
  /** Of those, kept only by the stream leader's record (this view lacked it or was behind). */
  keptByLeader: number;
  /** Names that are not HOST/ITEM: left alone. */
  foreign: number;
  /** Kept by no record in the view, but younger than minAgeMs (or rewritten since the scan: ageS 0). */
  young: SweptObject[];
  /** Kept by no record and old enough: removed (with dryRun: would be). */
  removed: SweptObject[];
  /** Could not be removed, or the leader's record could not be read: left, with why. */
  failed: Array<SweptObject & { error: string }>;
  /** How many of each there were (the lists stop at listLimit), and the bytes removed. */
  counts: { young: number; removed: number; removedBytes: number; failed: number };
}

export async function sweepObjects(d: SweepDeps): Promise<SweepResult> {
  const now = d.now ?? Date.now();
  const limit = d.listLimit ?? SWEEP_LIST_LIMIT;
  const out: SweepResult = { objects: 0, kept: 0, keptByLeader: 0, foreign: 0, young: [], removed: [], failed: [], counts: { young: 0, removed: 0, removedBytes: 0, failed: 0 } };
  const atLeader = new Map<string, Promise<ReadonlySet<string> | null>>();
  const list = <T>(to: T[], o: T): void => { if (to.length < limit) to.push(o); };
  for await (const info of d.objects.scan()) {
    if (info.deleted) continue;
    out.objects++;
    const ageMs = now - Date.parse(info.mtime); // NaN when the time is unreadable
    const o = parse(info, d.isItem, ageMs);
    if (!o) { out.foreign++; continue; }
    if (d.keptInView(o.host, o.item)) { out.kept++; continue; }
    const { item: _item, ...swept } = o;
    // An unreadable time counts as young: never removed on a guess.
    if (!(ageMs >= d.minAgeMs)) { out.counts.young++; list(out.young, swept); continue; }
    try {
      // One read per host says what is kept (a host's many logs cost one read, not one each) ...
      let leader = atLeader.get(o.host);
      if (!leader) atLeader.set(o.host, (leader = d.keptAtLeader(o.host)));
      if ((await leader)?.has(o.item)) { out.kept++; out.keptByLeader++; continue; }
      // ... but a delete is decided on a fresh one: a record set since may keep the object now.
      if ((await d.keptAtLeader(o.host))?.has(o.item)) { out.kept++; out.keptByLeader++; continue; }
      if (!d.dryRun && !await d.objects.deleteScanned(info)) {
        // Refreshed or stored again since the scan (a deploy reusing it, a log stored again): young now.
        out.counts.young++;
        list(out.young, { ...swept, ageS: 0 });
        continue;
      }
      out.counts.removed++;
      out.counts.removedBytes += swept.bytes;
      list(out.removed, swept);
    } catch (err) {
      out.counts.failed++;
      list(out.failed, { ...swept, error: (err as Error).message });
    }
  }
  return out;
}

function parse(info: ObjectMeta, isItem: (item: string) => boolean, ageMs: number): (SweptObject & { item: string }) | null {
  const slash = info.name.indexOf('/');
  if (slash < 0) return null;
  const host = info.name.slice(0, slash);
  const item = info.name.slice(slash + 1);
  if (!isHostName(host) || !isItem(item)) return null;
  return { name: info.name, host, item, bytes: info.size, ageS: Number.isFinite(ageMs) ? Math.max(0, Math.round(ageMs / 1000)) : 0 };
}
