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
// This file keeps them in revision order; this hub's acknowledged writes
// the watch passes without delivering (a later write of the key replaced
// them first) are reported when it passes them (kv-view-skipped.ts). A reload (a new watch) and the
// stream leader's records are reconciled by content instead, since their
// revisions may be in another numbering (kv-view-content.ts); with the
// store's RecordProgress, two more rules apply (kv-view-progress.ts). The
// reads over the layers are in kv-view-reads.ts.
import type { StoreChange } from '../store/types.js';
import type { Op } from './kv-view-reads.js';
import { ViewByContent } from './kv-view-content.js';
import { laterState } from './kv-view-progress.js';
import { AheadOfWatch } from './kv-view-skipped.js';

export type { Op } from './kv-view-reads.js';
export type { ViewEvents } from './kv-view-content.js';

/** `base`: the newest revision the write could have known of; a later change of its key supersedes it once it failed. */
interface Latest { gen: number; base: number; failed: boolean; cas?: true }

export class KvView<T> extends ViewByContent<T> {
  private readonly latest = new Map<string, Latest>();
  private gen = 0;
  /** This hub's acks above the watch's position, until it reaches them. */
  private readonly ahead = new AheadOfWatch();

  get watchPosition(): number { return this.pos; }
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
    if (seq > this.pos) this.ahead.add({ key, revision: seq, op });
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

  /** This hub's unfinished write of KEY, whatever its generation, is given up (KeyedStore.abandon). */
  abandon(key: string): void {
    const l = this.latest.get(key);
    if (l) this.dropped(key, l.gen);
  }

  /** Write GEN of KEY is over without an ack (a CAS conflict, or superseded): forget its value. */
  dropped(key: string, gen: number): void {
    if (this.pending.get(key)?.gen === gen) this.pending.delete(key);
    if (this.latest.get(key)?.gen === gen) this.latest.delete(key);
  }

  // --- the bucket's watch ---

  /** A new watch reloads: what it delivers is reconciled by content, acks in the old one's numbering are moot. */
  override beginReload(): void {
    this.ahead.clear();
    super.beginReload();
  }

  /** The reload reported its keys' content: acks up to its position are covered. */
  override endReload(): ReadonlySet<string> {
    const seen = super.endReload();
    this.ahead.dropUpTo(this.pos);
    return seen;
  }

  /** The watch delivered REVISION, but nothing this view holds (a key no hub wrote). */
  passed(revision: number): void {
    if (!this.reloading) this.reportSkipped(revision);
    if (revision > this.pos) this.pos = revision;
    if (revision > this.known) this.known = revision;
  }

  /** One watch entry: RAW is the decoded JSON of a PUT (undefined if it did not parse). */
  fromWatch(key: string, revision: number, kind: 'PUT' | 'DEL' | 'PURGE', raw: unknown, parsed: boolean): void {
    if (!this.reloading) this.reportSkipped(revision);
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
      if (heard && this.holdSettled(key, revision, raw, 'live')) return;
      change = { op: 'set', key, value: raw, revision };
      if (!this.takeLaterState(key, revision, raw)) this.applyConfirmed(key, revision, { op: 'set', value: raw }, 'watch');
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
   * The watch reached REVISION: this hub's acknowledged writes below it that
   * it never delivered were replaced in the bucket before it got there.
   * Watchers hear of them now, in revision order, before the entry at
   * REVISION; the view already holds them or something newer.
   */
  private reportSkipped(revision: number): void {
    // `unheard` stays: on a replica numbered otherwise, the write may be delivered yet (kv-view-skipped.ts).
    for (const w of this.ahead.reached(revision)) {
      this.ev.change(w.op.op === 'set' ? { op: 'set', key: w.key, value: w.op.value as T, revision: w.revision } : { op: 'delete', key: w.key, revision: w.revision });
    }
  }

  /**
   * A live entry at or below the view's revision of KEY that is a later
   * state of its record (kv-view-progress.ts laterState): the view takes it,
   * in the watch's numbering. Returns whether it did.
   */
  private takeLaterState(key: string, revision: number, raw: T): boolean {
    const before = this.confirmed.get(key);
    if (!before || !laterState(this.progress, before, { value: raw, revision })) return false;
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
