// One job record's fenced write (store/jobs.ts calls it, one write per record
// at a time): a compare-and-swap on the revision this hub sees, stamped with
// the writer's claim on the host (hub, epoch).
//
// The rule: a newer claim's record is never overwritten (its epoch is
// higher: this hub lost the host, STATE_CONFLICT); within one claim, a
// conflict is this hub's own writes crossing (or a queue write of another hub
// for a host nobody holds), so it is tried again on the record that won.
//
// Why a takeover costs two writes, and later writes may skip the guard.
// NATS before 2.9.21 checks "expected last subject sequence" only when the
// leader proposes a write, not when it is applied (hub/cluster/kv-cas.ts), so
// the store guards every compare-and-swap with the bucket's last sequence,
// which serializes them per bucket: a fan-out would queue every job's writes
// behind each other. Writes that cannot race a writer on another claim are
// sent without that guard (WriteOptions.soleWriter). When is that sound?
//
// Let hub S hold a stale claim and see its own revision x of a record, while
// hub N (newer claim) takes the record over. S's unguarded write expecting x
// lands iff x is the key's last APPLIED revision when the leader checks it.
// N's takeover is two exact (guarded) writes, the second sent after the first
// is acknowledged:
//   1. the fence post P: the record as N sees it, re-stamped with N's claim
//      (nothing new in it). Once P is applied, S's writes are refused (the key
//      is past x, and S never sees P as its own);
//   2. the content C, expecting P. An S write checked before P was applied
//      was proposed before P's acknowledgement, so before C: if it landed
//      (before or after P), C's exact check refuses C and N starts again on
//      the record that won (a new fence post, as if S's write had come first).
// So once C is acknowledged no write of an older claim can land behind it:
// C is "sealed". A write expecting a sealed revision of this hub's own claim
// needs no guard: an older claim's write checked while it is in flight sees
// the sealed revision (never its own) and is refused, and one checked earlier
// would have refused the sealing write. Its result is sealed in turn. A
// create (expected revision 0) is exact on every server version: sealed too.
// Anything else (the first write after a restart, another claim's record, a
// revision this hub did not write) goes guarded. test/integration/cluster-
// stale-writer.test.ts races a stale and a newer hub on a real 2.9.10 cluster.
//
// A hub's own verdict on a job (`overOpenOnly`: interrupted, or "not run")
// is a decision about a job it saw open. If the record it finds is final
// (the conflict's winner: the job's result, written by another hub or
// recorded before this hub's view showed it), the verdict is moot and is
// not written: retrying it on the winner turned a success into
// "interrupted" (the soak: a hub restarted on a nats-server 2.9.10 replica
// that held stale "running" records interrupted 13 jobs that had ended).
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { KeyedStore } from './types.js';
import { untilView } from './view-wait.js';

/** A conflicting write is tried again at most this often (each time on the newer record). */
const MAX_CONFLICTS = 5;

/** What the writer reads of a record (store/jobs.ts JobRecord). */
export interface StampedRecord {
  id: string;
  host: string;
  /** The writer's claim on the host (absent on one hub). */
  hub?: string;
  epoch?: number;
}

export interface FencedWriterDeps<T extends StampedRecord> {
  records: KeyedStore<T>;
  log: Logger;
  /** Is this record final (an `overOpenOnly` write is not made over it)? */
  isFinal: (rec: T) => boolean;
}

export interface FencedWriteOptions {
  /** WriteOptions.eventually (types.ts). */
  eventually?: boolean;
  /** A verdict on an open record: resolves without writing once the record is final (see above). */
  overOpenOnly?: boolean;
}

export class FencedWriter<T extends StampedRecord> {
  /** Record id -> the revision of this hub's last sealed write of it (see above). */
  private readonly sealed = new Map<string, number>();

  constructor(private readonly d: FencedWriterDeps<T>) {}

  /** Write REC (stamped with this hub's claim, or unstamped on one hub) onto the record this hub sees. */
  write(rec: T, o: FencedWriteOptions = {}): Promise<void> {
    return this.attempt(rec, o.eventually === true, o.overOpenOnly === true, 0);
  }

  /**
   * One compare-and-swap of REC, and what follows it (the content after a
   * fence post, another try after a conflict). Not an async function: the
   * first attempt reaches the store in the caller's turn with no frame or
   * await of its own (a fan-out makes three of these per host, and on one
   * hub nearly every one is a first attempt that succeeds).
   */
  private attempt(rec: T, eventually: boolean, overOpenOnly: boolean, conflicts: number): Promise<void> {
    const cur = this.d.records.entry(rec.id);
    const theirs = cur?.value;
    if (overOpenOnly && theirs !== undefined && this.d.isFinal(theirs)) {
      this.d.log.info({ jobId: rec.id, host: rec.host, holder: theirs.hub, holderEpoch: theirs.epoch }, 'not writing a verdict on a job that has ended meanwhile; its record stays');
      return Promise.resolve();
    }
    if (theirs?.epoch !== undefined && rec.epoch !== undefined && theirs.epoch > rec.epoch) {
      this.d.log.warn({ jobId: rec.id, host: rec.host, epoch: rec.epoch, holder: theirs.hub, holderEpoch: theirs.epoch }, 'not writing a job record: another hub holds its host now');
      return Promise.reject(new BentoError('STATE_CONFLICT', `job ${rec.id}: host ${rec.host} is held by hub ${theirs.hub ?? '?'} now (epoch ${theirs.epoch} > ${rec.epoch})`));
    }
    const expect = cur?.revision ?? 0;
    const own = ownedBy(theirs, rec);
    // Another claim's record: the fence post first (step 1 above), then the content.
    const post = theirs !== undefined && rec.hub !== undefined && !own;
    const value = post ? { ...theirs, hub: rec.hub, epoch: rec.epoch } as T : rec;
    const sole = own && this.sealed.get(rec.id) === expect;
    // Eventually (types.ts): the content write only; a fence post is never held back.
    const opts = eventually && !post ? { expectRevision: expect, soleWriter: sole, eventually } : { expectRevision: expect, soleWriter: sole };
    return this.d.records.set(rec.id, value, opts).then(
      (revision) => {
        if (post) return this.attempt(rec, eventually, overOpenOnly, conflicts);
        if (rec.hub !== undefined && (expect === 0 || own)) this.sealed.set(rec.id, revision);
        else this.sealed.delete(rec.id);
        return undefined;
      },
      (err: unknown) => {
        if (!(err instanceof BentoError && err.code === 'STATE_CONFLICT') || conflicts + 1 >= MAX_CONFLICTS) throw err;
        return this.viewPast(rec.id, expect).then(() => this.attempt(rec, eventually, overOpenOnly, conflicts + 1));
      },
    );
  }

  /** The record is gone (pruned, discarded): forget what was sealed of it. */
  forget(id: string): void {
    this.sealed.delete(id);
  }

  /** Until this hub's view shows a revision of ID other than EXPECT (the write that won), at most VIEW_CATCHUP_MS. */
  private async viewPast(id: string, expect: number): Promise<void> {
    await untilView(() => (this.d.records.entry(id)?.revision ?? 0) !== expect);
  }
}

/** Is THEIRS (the record as this hub sees it) this hub's own write under the claim it writes REC with? */
function ownedBy(theirs: StampedRecord | undefined, rec: StampedRecord): boolean {
  return theirs !== undefined && rec.hub !== undefined && theirs.hub === rec.hub && theirs.epoch === rec.epoch;
}
