// This hub's acknowledged writes that the bucket's watch has not reached yet,
// kept so that watchers hear of each even when the watch never delivers it.
//
// Why: a bucket keeps one revision per key (history 1), and the watch's
// consumer reads the stream of its own replica when it gets to it. A write
// that a later write of the same key replaced before then is gone, and the
// watch goes straight to the later one: set x, set y, delete x delivered
// only y and the deletion (cluster-contract; that sequence in a loop lost
// x's first revision in 4 of 200 fresh stores beside two CPU hogs, and in
// nearly every round with the consumer's server frozen during the writes,
// cluster-watch-skipped). The watch delivers the whole bucket in
// revision order, so once it delivers a revision above one of these writes
// without having delivered that write, the write was skipped: it is reported
// then, in revision order, before the entry that passed it.
//
// Another hub's replaced revisions cannot be recovered this way (nobody here
// knows them): watchers see that key's later state, as after a reload.
// Revisions are compared as one numbering, as the view's own ack check does
// (kv-view.ts applyConfirmed). On a replica that numbers the stream higher
// (nats-server 2.9.10 after kill -9, kv-leader.ts) a write can so be
// reported before the watch delivers it, and again then: twice, never lost.
// A reload (a new watch) drops these: it reports by content.
import type { Op } from './kv-view-reads.js';

export interface AckedWrite { key: string; revision: number; op: Op }

/**
 * Bounds memory when the watch is dead or numbered lower for long (the
 * watchdog replaces it and the reload drops these): past it the oldest are
 * forgotten, and such a write, if skipped, is not reported.
 */
const MAX_KEPT = 100_000;

export class AheadOfWatch {
  /** Sorted by revision from `head` on (acks mostly arrive in order: appended). */
  private recs: AckedWrite[] = [];
  private head = 0;

  get size(): number { return this.recs.length - this.head; }

  /** An ack above the watch's position. */
  add(w: AckedWrite): void {
    const r = this.recs;
    let i = r.length;
    while (i > this.head && r[i - 1]!.revision > w.revision) i -= 1;
    if (i === r.length) r.push(w);
    else r.splice(i, 0, w);
    if (this.size > MAX_KEPT) this.head += 1;
    this.compact();
  }

  /**
   * The watch delivered REVISION: the writes below it that it did not
   * deliver (it passed them), in revision order; the one at it is dropped
   * (that entry is it).
   */
  reached(revision: number): AckedWrite[] {
    const r = this.recs;
    if (this.head >= r.length || r[this.head]!.revision > revision) return [];
    const skipped: AckedWrite[] = [];
    while (this.head < r.length && r[this.head]!.revision <= revision) {
      const w = r[this.head]!;
      this.head += 1;
      if (w.revision < revision) skipped.push(w);
    }
    this.compact();
    return skipped;
  }

  /** Forget the writes at or below REVISION (a reload reported their keys' content). */
  dropUpTo(revision: number): void {
    while (this.head < this.recs.length && this.recs[this.head]!.revision <= revision) this.head += 1;
    this.compact();
  }

  clear(): void {
    this.recs = [];
    this.head = 0;
  }

  private compact(): void {
    if (this.head === this.recs.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.recs.length) {
      this.recs = this.recs.slice(this.head);
      this.head = 0;
    }
  }
}
