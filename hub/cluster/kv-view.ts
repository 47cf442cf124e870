// The local view of one KV bucket: what a NATS keyed store reads from, so
// reads never wait for the network. Pure bookkeeping, no I/O (unit-tested
// alone in test/unit/cluster-kv-view.test.ts).
//
// Three layers:
//   - confirmed: the newest value per key that JetStream acknowledged, from
//     the bucket's watch (every hub's writes) or from this hub's own acks,
//     whichever is newer by revision. An ack can come before the watch
//     delivers the same revision, so a deletion applied from an ack leaves a
//     short-lived tombstone until the watch has passed it (else an older
//     watch entry of that key could bring it back).
//   - pending: the value of this hub's latest plain set/delete of a key while
//     it is not yet acknowledged (guarantee 2: visible at once). CAS writes are
//     not shown before their ack (visible when their promise resolves).
//   - latest: the newest write of each key this hub has not finished, plain or
//     CAS, so an older write's retries stop once a newer one exists.
//
// A reload (beginReload .. endReload) takes the bucket's last value per key
// afresh from a new watch and reconciles `confirmed` with it by CONTENT, not
// by revision: a new watch may run on a replica that numbers the stream
// otherwise (nats-server 2.9.10 after kill -9, kv-leader.ts), so its
// revisions cannot be compared with the ones the view holds. Keys whose
// content changed or that vanished are reported once; unchanged keys take the
// new numbering silently; pending and latest (this hub's own unfinished
// writes) are left as they are. Watchers hear of this hub's own writes from
// the watch too (store/types.ts StoreChange), so a key whose last change the
// view took from an ack the watch had not delivered (`unheard`) is reported
// by the reload even when its content matches. A reload's records that can
// still change are then checked against the stream's leader, which corrects
// the ones its replica missed writes of (correct(), kv-verify.ts).
//
// With the store's RecordProgress, two more rules (both for nats-server
// 2.9.10 replicas that diverged after kill -9, docs/cluster.md "Soak"):
//   - an irreversible record (an agent's outcome) that the bucket brings
//     back in an earlier state was acknowledged and then lost by NATS (such
//     a replica led the stream): the view keeps it at the revision the
//     bucket now has, watchers hear nothing, and the store is told
//     (regressed) to write it back (keepSettled);
//   - a live entry that is a later state of its record is taken even at or
//     below the view's revision, which may be in another numbering
//     (laterState).
// The reads over the layers are in kv-view-reads.ts.
import type { RecordProgress, StoreChange, Versioned } from '../store/types.js';
import { ViewReads, type Op } from './kv-view-reads.js';

export type { Op } from './kv-view-reads.js';

/** `base`: the newest revision the write could have known of; a later change of its key supersedes it once it failed. */
interface Latest { gen: number; base: number; failed: boolean; cas?: true }

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

export class KvView<T> extends ViewReads<T> {
  private readonly tombs = new Map<string, number>();
  private readonly latest = new Map<string, Latest>();
  private gen = 0;
  /** The highest revision the watch has delivered. */
  private pos = 0;
  /** The highest revision seen at all (watch or ack): every revision up to it existed before the next write. */
  private known = 0;
  /** While a reload runs: the keys its watch has delivered so far. */
  private reloading: Set<string> | null = null;
  /** Keys whose last change came from this hub's ack (at this revision) and not yet from the watch. */
  private readonly unheard = new Map<string, number>();

  constructor(
    private readonly accept: (key: string, value: unknown) => value is T,
    private readonly ev: ViewEvents<T>,
    /** Given: the two rules at the top of this file apply. */
    private readonly progress?: RecordProgress<T>,
  ) {
    super();
  }

  get watchPosition(): number { return this.pos; }
  get isReloading(): boolean { return this.reloading !== null; }
  /** The newest revision seen at all, from the watch or an ack. */
  get knownRevision(): number { return this.known; }

  // --- this hub's writes ---

  /** A plain set/delete begins: shown at once. Returns its generation. */
  beginPlain(key: string, op: Op): number {
    const gen = ++this.gen;
    this.pending.set(key, { gen, op });
    this.latest.set(key, { gen, base: this.known, failed: false });
    return gen;
  }

  /** A compare-and-swap on revision EXPECT begins: not shown until acknowledged. */
  beginCas(key: string, expect: number): number {
    const gen = ++this.gen;
    // Any change of the key after EXPECT makes this CAS fail anyway.
    this.latest.set(key, { gen, base: expect, failed: false, cas: true });
    return gen;
  }

  /** Is GEN still the newest unfinished write of KEY (else its retries stop)? */
  isLatest(key: string, gen: number): boolean {
    return this.latest.get(key)?.gen === gen;
  }

  /** JetStream acknowledged write GEN of KEY at revision SEQ. */
  acked(key: string, gen: number, seq: number, op: Op): void {
    const l = this.latest.get(key);
    if (l?.gen === gen && l.cas && (this.confirmed.get(key)?.revision ?? 0) === l.base && !this.tombs.has(key)) {
      // A compare-and-swap on the revision the view holds: the key's newest state, whatever the watch's
      // position says. (The watch may run on a replica that numbers the stream otherwise, kv-leader.ts,
      // and an ack "at or below its position" would then never show, though the watch had not delivered it.)
      this.applyConfirmed(key, seq, op, 'cas');
    } else {
      this.applyConfirmed(key, seq, op, 'ack');
    }
    const p = this.pending.get(key);
    // A durable write of this hub replaces any older optimistic value of the key.
    if (p && p.gen <= gen) this.pending.delete(key);
    if (this.latest.get(key)?.gen === gen) this.latest.delete(key);
  }

  /** Write GEN missed its deadline: from now on a newer revision of KEY in the bucket supersedes it. */
  failed(key: string, gen: number): void {
    const l = this.latest.get(key);
    if (l?.gen === gen) l.failed = true;
  }

  /** Write GEN of KEY is over without an ack (a CAS conflict, or superseded): forget its value. */
  dropped(key: string, gen: number): void {
    if (this.pending.get(key)?.gen === gen) this.pending.delete(key);
    if (this.latest.get(key)?.gen === gen) this.latest.delete(key);
  }

  // --- the bucket's watch ---

  /** The watch delivered REVISION, but nothing this view holds (a key no hub wrote). */
  passed(revision: number): void {
    if (revision > this.pos) this.pos = revision;
    if (revision > this.known) this.known = revision;
  }

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

  /** One watch entry: RAW is the decoded JSON of a PUT (undefined if it did not parse). */
  fromWatch(key: string, revision: number, kind: 'PUT' | 'DEL' | 'PURGE', raw: unknown, parsed: boolean): void {
    if (revision > this.pos) this.pos = revision;
    if (revision > this.known) this.known = revision;
    if (this.reloading) { this.reconcile(key, revision, kind, raw, parsed); return; }
    const u = this.unheard.get(key);
    // The view's record came from this hub's ack, in the leader's numbering, which the watch's replica may not share:
    // until the watch delivers it, an earlier state from the watch is the write before it, late.
    const heard = u === undefined;
    if (u !== undefined && revision >= u) this.unheard.delete(key);
    let change: StoreChange<T>;
    if (kind === 'PUT' && parsed && this.accept(key, raw)) {
      if (heard && this.keepSettled(key, revision, raw, 'live')) return;
      change = { op: 'set', key, value: raw, revision };
      if (!this.laterState(key, revision, raw)) this.applyConfirmed(key, revision, { op: 'set', value: raw }, 'watch');
    } else {
      // A record this hub cannot accept reads as absent: handing out the older
      // value would show state the bucket no longer has.
      if (kind === 'PUT') this.ev.refused(key, revision);
      change = { op: 'delete', key, revision };
      this.applyConfirmed(key, revision, { op: 'delete' }, 'watch');
    }
    if (this.tombs.size > 0) for (const [k, r] of this.tombs) if (r <= this.pos) this.tombs.delete(k);
    const l = this.latest.get(key);
    if (l?.failed && revision > l.base) {
      // The key moved on after a write of ours gave up (maybe it was ours,
      // landing late): retrying it now could overwrite a newer change.
      this.dropped(key, l.gen);
      this.ev.superseded(key, l.gen, revision);
    }
    this.ev.change(change);
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
      if (this.keepSettled(key, revision, raw, 'elsewhere')) return true;
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
  private reconcile(key: string, revision: number, kind: 'PUT' | 'DEL' | 'PURGE', raw: unknown, parsed: boolean): void {
    this.reloading!.add(key);
    const before = this.confirmed.get(key);
    const unheard = this.unheard.delete(key);
    this.tombs.delete(key);
    if (kind === 'PUT' && parsed && this.accept(key, raw)) {
      if (this.keepSettled(key, revision, raw, 'elsewhere')) return;
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
   * irreversible record the view holds: the view keeps its record, now at
   * REVISION (the bucket's numbering, so the write back can compare and swap
   * on it), and the store hears of it. Returns whether it did. A live entry
   * counts only past the view's revision: the watch delivers in order, and an
   * older entry (the record's `running` after this hub's ack of its end) is
   * just late. A reload's entry, or the leader's record (adopt), is the key's
   * last one, in a numbering that cannot be compared.
   */
  private keepSettled(key: string, revision: number, raw: T, from: 'live' | 'elsewhere'): boolean {
    const before = this.confirmed.get(key);
    if (!this.progress || !before || !this.progress.irreversible(before.value) || !this.progress.ahead(before.value, raw)) return false;
    if (from === 'live' && revision <= before.revision) return false;
    this.confirmed.set(key, { value: before.value, revision });
    this.ev.regressed(key, before.value, revision, raw);
    return true;
  }

  /**
   * A live entry at or below the view's revision of KEY that is nevertheless
   * a later state of the record (RecordProgress.ahead: records only move
   * forward, so it is newer in time): the view's revision is in another
   * numbering than the watch's (the leader's, taken from an ack or a
   * re-based write, on a 2.9.10 replica that numbers the stream otherwise),
   * and the revision check would ignore another hub's change (a job's end)
   * until the record changed again. The view takes it, in the watch's
   * numbering. Returns whether it did.
   */
  private laterState(key: string, revision: number, raw: T): boolean {
    const before = this.confirmed.get(key);
    if (!this.progress || !before || before.revision < revision || !this.progress.ahead(raw, before.value)) return false;
    this.confirmed.set(key, { value: raw, revision });
    this.unheard.delete(key);
    this.tombs.delete(key);
    return true;
  }

  private applyConfirmed(key: string, seq: number, op: Op, from: 'ack' | 'cas' | 'watch'): void {
    if (seq > this.known) this.known = seq;
    // The watch delivers in order: an ack at or below its position is already in.
    if (from === 'ack' && seq <= this.pos) return;
    if (from !== 'cas' && ((this.confirmed.get(key)?.revision ?? 0) >= seq || (this.tombs.get(key) ?? 0) >= seq)) return;
    if (from === 'watch') this.unheard.delete(key);
    else this.unheard.set(key, seq);
    if (op.op === 'set') {
      this.confirmed.set(key, { value: op.value as T, revision: seq });
      this.tombs.delete(key);
    } else {
      this.confirmed.delete(key);
      if (seq > this.pos) this.tombs.set(key, seq);
    }
  }
}
