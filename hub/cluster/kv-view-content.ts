// The records a NATS keyed store's local view (kv-view.ts) takes by CONTENT,
// not by revision: a reload's and the stream leader's. Their revisions cannot
// be compared with the ones the view holds: a new watch may run on a replica
// that numbers the stream otherwise (nats-server 2.9.10 after kill -9,
// kv-leader.ts), and the view's own may be another replica's numbering.
// KvView (kv-view.ts) builds on this class with what keeps revision order
// (this hub's writes and acks, the live watch); the bookkeeping both sides
// use (tombstones, the watch's position, `unheard`) is declared here, below.
//
// A reload (beginReload .. endReload) takes the bucket's last value per key
// afresh from a new watch and reconciles `confirmed` with it. Keys whose
// content changed or that vanished are reported once; unchanged keys take the
// new numbering silently; pending and latest (this hub's own unfinished
// writes) are left as they are. Watchers hear of this hub's own writes from
// the watch too (store/types.ts StoreChange), so a key whose last change the
// view took from an ack the watch had not delivered (`unheard`) is reported
// by the reload even when its content matches. A reload's records that can
// still change are then checked against the stream's leader, which corrects
// the ones its replica missed writes of (correct(), kv-verify.ts).
import type { RecordProgress, StoreChange, Versioned } from '../store/types.js';
import { ViewReads } from './kv-view-reads.js';
import { keepSettled } from './kv-view-progress.js';

export interface ViewEvents<T> {
  /** Every change the watch delivers, in revision order (guarantee 6). */
  change(c: StoreChange<T>): void;
  /** A record from the bucket that the accept guard refused (guarantee 7). */
  refused(key: string, revision: number): void;
  /** A failed write stopped retrying because the bucket moved past it. */
  superseded(key: string, gen: number, revision: number): void;
  /**
   * The bucket holds KEY at REVISION in an earlier state than the
   * irreversible VALUE the view had (and keeps): NATS lost an acknowledged write. The
   * store writes VALUE back (compare-and-swap on REVISION).
   */
  regressed(key: string, value: T, revision: number, loaded: T): void;
}

export abstract class ViewByContent<T> extends ViewReads<T> {
  protected readonly tombs = new Map<string, number>();
  /** The highest revision the watch has delivered. */
  protected pos = 0;
  /** The highest revision seen at all (watch or ack): every revision up to it existed before the next write. */
  protected known = 0;
  /** While a reload runs: the keys its watch has delivered so far. */
  protected reloading: Set<string> | null = null;
  /** Keys whose last change came from this hub's ack (at this revision) and not yet from the watch. */
  protected readonly unheard = new Map<string, number>();

  constructor(
    protected readonly accept: (key: string, value: unknown) => value is T,
    protected readonly ev: ViewEvents<T>,
    /** Given: the rules of kv-view-progress.ts apply. */
    protected readonly progress?: RecordProgress<T>,
  ) {
    super();
  }

  get isReloading(): boolean { return this.reloading !== null; }

  /**
   * A new watch starts delivering the bucket's last value per key: from now
   * until endReload(), watch entries are reconciled by content. The watch
   * position restarts in the new watch's numbering.
   */
  beginReload(): void {
    this.reloading = new Set();
    this.pos = 0;
  }

  /**
   * The new watch delivered every key's last value (it reported nothing more
   * pending): keys the view holds that it did not deliver are gone from the
   * bucket, and are reported deleted. Tombstones were kept against the old
   * watch's late entries; the new watch has none to bring. Returns the keys
   * the reload delivered, deleted ones too (its check looks up only keys the
   * leader holds beyond them, kv-verify.ts findMissing).
   */
  endReload(): ReadonlySet<string> {
    const seen = this.reloading;
    if (!seen) return new Set();
    this.reloading = null;
    this.tombs.clear();
    for (const [key] of [...this.confirmed]) {
      if (seen.has(key)) continue;
      this.confirmed.delete(key);
      this.unheard.delete(key);
      this.ev.change({ op: 'delete', key, revision: this.pos });
    }
    // This hub's own deletions the bucket no longer shows at all: nobody heard of them yet.
    for (const key of this.unheard.keys()) if (!seen.has(key)) this.ev.change({ op: 'delete', key, revision: this.pos });
    this.unheard.clear();
    return seen;
  }

  /**
   * The stream leader's last record of KEY (kv-leader.ts), after a refused
   * compare-and-swap: it replaces what the view holds of KEY whatever the
   * revisions say, since the view's may be another replica's numbering.
   * Watchers hear of it when the content differs.
   *
   * BASIS is what the view held when the lookup was sent. If the view
   * changed since (the watch delivered the key while the answer was on its
   * way), the answer may be older than that change, and revisions cannot
   * tell (other numbering): the view keeps what it has, and the watch, which
   * delivers in order, brings anything newer. Adopting regardless pinned a
   * hub on the winner's first write (the fence post) with the watch already
   * past its second (cluster-stale-writer.test.ts, about 1 run in 8).
   * Returns whether the record was adopted.
   */
  adopt(key: string, basis: Versioned<T> | undefined, rec: { revision: number; kind: 'PUT' | 'DEL' | 'PURGE'; raw: unknown; parsed: boolean }): boolean {
    const { revision, kind, raw, parsed } = rec;
    const before = this.confirmed.get(key);
    if (before !== basis) return false;
    if (revision > this.known) this.known = revision;
    if (kind === 'PUT' && parsed && this.accept(key, raw)) {
      if (this.holdSettled(key, revision, raw, 'elsewhere')) return true;
      this.confirmed.set(key, { value: raw, revision });
      this.tombs.delete(key);
      if (!before || JSON.stringify(before.value) !== JSON.stringify(raw)) this.ev.change({ op: 'set', key, value: raw, revision });
      return true;
    }
    if (kind === 'PUT') this.ev.refused(key, revision);
    this.confirmed.delete(key);
    if (revision > this.pos) this.tombs.set(key, revision);
    if (before) this.ev.change({ op: 'delete', key, revision });
    return true;
  }

  /**
   * The stream leader's record of KEY is a later state than the one a
   * reload loaded from its replica (kv-verify.ts): the view takes its
   * content and KEEPS its revision. That revision is the watch's numbering,
   * so the watch's later entries of KEY (live changes, which are right)
   * still apply over it; a compare-and-swap on it is refused by the leader
   * and re-based there on the same content (kv-rebase.ts). Watchers hear the
   * change. BASIS: what the view held when the lookup was sent; if the view
   * changed since, it keeps what it has (as adopt()). Returns whether the
   * record was corrected.
   */
  correct(key: string, basis: Versioned<T>, value: unknown): boolean {
    if (this.confirmed.get(key) !== basis || !this.accept(key, value)) return false;
    this.confirmed.set(key, { value, revision: basis.revision });
    this.ev.change({ op: 'set', key, value, revision: basis.revision });
    return true;
  }

  /** A reload's entry: the key's content now, whatever its revision says (see the top of this file). */
  protected reconcile(key: string, revision: number, kind: 'PUT' | 'DEL' | 'PURGE', raw: unknown, parsed: boolean): void {
    this.reloading!.add(key);
    const before = this.confirmed.get(key);
    const unheard = this.unheard.delete(key);
    this.tombs.delete(key);
    if (kind === 'PUT' && parsed && this.accept(key, raw)) {
      if (this.holdSettled(key, revision, raw, 'elsewhere')) return;
      this.confirmed.set(key, { value: raw, revision });
      if (unheard || !before || JSON.stringify(before.value) !== JSON.stringify(raw)) this.ev.change({ op: 'set', key, value: raw, revision });
      return;
    }
    if (kind === 'PUT') this.ev.refused(key, revision);
    this.confirmed.delete(key);
    if (unheard || before) this.ev.change({ op: 'delete', key, revision });
  }

  /**
   * The bucket's record RAW of KEY at REVISION is an earlier state of the
   * irreversible record the view holds (kv-view-progress.ts keepSettled):
   * the view keeps its record, now at REVISION, and the store hears of it.
   * Returns whether it did.
   */
  protected holdSettled(key: string, revision: number, raw: T, from: 'live' | 'elsewhere'): boolean {
    const before = this.confirmed.get(key);
    if (!before || !keepSettled(this.progress, before, { value: raw, revision }, from)) return false;
    this.confirmed.set(key, { value: before.value, revision });
    this.ev.regressed(key, before.value, revision, raw);
    return true;
  }
}
