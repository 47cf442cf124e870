// Writing back a record NATS acknowledged and then lost (kv-view-progress.ts
// keepSettled): an agent's outcome that the bucket shows in an earlier state
// again, seen in the soak when a nats-server 2.9.10 replica that had missed
// the write became the stream leader (docs/cluster.md, "Keyed stores").
//
// The write is a compare-and-swap on the revision the bucket showed, so a hub
// that did it first is not written over (its record is the same one). A
// refused swap that meets the earlier state at the leader under another
// revision comes back here (the view keeps its record and reports it again),
// so the tries per key are bounded.
import type { Logger } from '../../common/platform/log.js';
import type { WriteOptions } from '../store/types.js';

/** Write-backs of one lost record before giving up (each is a round trip that met the earlier state again). */
const TRIES = 3;
/** Warnings per minute, one per record; the rest at info (a new leader can have lost thousands; kv-verify.ts says how many). */
const WARN_PER_MINUTE = 10;

export interface WriteBackDeps<T> {
  bucket: string;
  log: Logger;
  set(key: string, value: T, opts: WriteOptions): Promise<number>;
  closed(): boolean;
}

export class WriteBack<T> {
  /** Per key: write-backs tried since the last that landed. */
  private readonly tries = new Map<string, number>();
  private warned = 0;
  private warnedSince = 0;

  constructor(private readonly d: WriteBackDeps<T>) {}

  /** The bucket holds KEY at REVISION as LOADED, an earlier state of the acknowledged VALUE: write VALUE again. */
  lost(key: string, value: T, revision: number, loaded: T): void {
    if (this.d.closed()) return;
    const n = (this.tries.get(key) ?? 0) + 1;
    const log = this.d.log.child({ bucket: this.d.bucket, key, revision, acknowledged: value, found: loaded });
    if (n > TRIES) {
      log.error('NATS keeps showing an earlier state of an acknowledged record; not writing it back again (the view keeps the acknowledged one)');
      return;
    }
    this.tries.set(key, n);
    const now = Date.now();
    if (now - this.warnedSince > 60_000) { this.warned = 0; this.warnedSince = now; }
    (this.warned++ < WARN_PER_MINUTE ? log.warn : log.info).call(log, 'NATS brought back an earlier state of a record it had acknowledged (a replica that missed writes leads the stream, docs/cluster.md); writing the acknowledged record again');
    this.d.set(key, value, { expectRevision: revision }).then(
      (seq) => { this.tries.delete(key); log.info({ seq }, 'acknowledged record written back'); },
      (err: Error) => log.warn({ err: err.message }, 'writing the acknowledged record back failed (another hub may have done it)'),
    );
  }
}
