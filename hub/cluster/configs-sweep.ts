// Configuration objects no record keeps (`bento-hub cluster sweep`). A
// deploy uploads a host's tree as object HOST/HASH before it sets the host's
// record (published-kv.ts), and drops the objects its record no longer keeps
// after; a deploy killed between the two steps, or a delete that failed,
// leaves an object nothing refers to. Such an object is removed here when:
//   - it is older than minAgeMs: a deploy running now may be between its
//     upload and its record (the default leaves an hour for that);
//   - neither this process's view of the records nor the stream leader's
//     record keeps its hash: a view loaded from a replica that lags (or
//     diverged after kill -9 on nats-server 2.9.10) may lack a record, and
//     deleting content a record refers to would leave the jails nothing to
//     mirror.
// Objects whose names are not HOST/HASH are not Bento's and are left alone.
import type { ObjectInfo, ObjectStore } from '@nats-io/obj';
import { isHostName } from '../../common/protocol/names.js';
import { HASH_RE } from '../publish/layout.js';

export interface ConfigSweepDeps {
  objects: Pick<ObjectStore, 'list' | 'delete'>;
  /** The hashes HOST's record keeps in this process's view; undefined when the view has no record. */
  keptInView(host: string): readonly string[] | undefined;
  /** The same from the stream's leader; null when it holds no record. Rejects when the leader does not answer. */
  keptAtLeader(host: string): Promise<readonly string[] | null>;
  /** Objects younger than this stay (a deploy may be between its upload and its record). */
  minAgeMs: number;
  /** Report what would be removed, remove nothing. */
  dryRun: boolean;
  now?: number;
}

export interface SweptObject { host: string; hash: string; bytes: number; ageS: number }

export interface ConfigSweepResult {
  /** Objects in the store (not counting deleted ones). */
  objects: number;
  /** Kept by a record. */
  kept: number;
  /** Names that are not HOST/HASH: left alone. */
  foreign: number;
  /** Kept by no record, but younger than minAgeMs. */
  young: SweptObject[];
  /** Kept by no record and old enough: removed (with dryRun: would be). */
  removed: SweptObject[];
  /** The view had no record keeping it, the leader had one: kept (the view lagged). */
  keptByLeader: number;
  /** Could not be removed, or the leader did not answer: left, with why. */
  failed: Array<SweptObject & { error: string }>;
}

export async function sweepConfigObjects(d: ConfigSweepDeps): Promise<ConfigSweepResult> {
  const now = d.now ?? Date.now();
  const out: ConfigSweepResult = { objects: 0, kept: 0, foreign: 0, young: [], removed: [], keptByLeader: 0, failed: [] };
  for (const info of await d.objects.list()) {
    if (info.deleted) continue;
    out.objects++;
    const parsed = parseName(info, now);
    if (!parsed) { out.foreign++; continue; }
    if (d.keptInView(parsed.host)?.includes(parsed.hash)) { out.kept++; continue; }
    // An unreadable time counts as young: never removed on a guess.
    if (!(now - Date.parse(info.mtime) >= d.minAgeMs)) { out.young.push(parsed); continue; }
    try {
      if ((await d.keptAtLeader(parsed.host))?.includes(parsed.hash)) { out.kept++; out.keptByLeader++; continue; }
      if (!d.dryRun) await d.objects.delete(info.name);
      out.removed.push(parsed);
    } catch (err) {
      out.failed.push({ ...parsed, error: (err as Error).message });
    }
  }
  return out;
}

function parseName(info: ObjectInfo, now: number): SweptObject | null {
  const slash = info.name.indexOf('/');
  const host = info.name.slice(0, slash);
  const hash = info.name.slice(slash + 1);
  if (slash < 0 || !isHostName(host) || !HASH_RE.test(hash)) return null;
  const mtime = Date.parse(info.mtime);
  return { host, hash, bytes: info.size, ageS: Number.isFinite(mtime) ? Math.max(0, Math.round((now - mtime) / 1000)) : 0 };
}
