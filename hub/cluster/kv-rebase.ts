// After a refused compare-and-swap: was the key really changed, or does only
// the watch's replica number the stream otherwise (kv-leader.ts explains the
// nats-server 2.9.10 bug)? Asks the stream leader for the key's last record.
import type { JetStreamManager } from '@nats-io/jetstream';
import { BentoError } from '../../common/protocol/errors.js';
import { leaderLast, sameContent, type LeaderRecord } from './kv-leader.js';
import type { KvView } from './kv-view.js';

export interface RebaseDeps<T> {
  jsm: JetStreamManager;
  stream: string;
  bucket: string;
  view: Pick<KvView<T>, 'basis' | 'adopt'>;
  /** Told once per re-based write: the view held EXPECT, the leader holds the same record at LEADER. */
  renumbered: (key: string, expect: number, leader: number) => void;
}

export function conflict(key: string, expect: number): BentoError {
  return new BentoError('STATE_CONFLICT', `${key} changed since revision ${expect}`);
}

/**
 * A compare-and-swap of KEY (on SUBJECT) on EXPECT was refused. Returns the
 * revision to try again with when the key did not really change: "must not
 * exist" on a key whose last record is a deletion marker (or that has no
 * record any more: its marker was purged), or the same record under the
 * leader's numbering. Otherwise the view takes the leader's record
 * and CONFLICT_ERR (or a "must not exist" conflict) is thrown.
 */
export async function rebaseOnLeader<T>(d: RebaseDeps<T>, o: { key: string; subject: string; expect: number; conflictErr: BentoError }): Promise<number> {
  const { key, expect } = o;
  const basis = d.view.basis(key);
  let last: LeaderRecord | null;
  try {
    last = await leaderLast(d.jsm, d.stream, o.subject);
  } catch (err) {
    throw new BentoError('STATE_WRITE_FAILED', `${d.bucket}/${key}: cannot look up the key's last record after a refused write: ${(err as Error).message}`, { cause: err });
  }
  if (expect === 0) {
    if (last && last.kind !== 'PUT') return last.revision;
    // Refused, yet the leader has no record now: a `cluster sweep` purged the key's deletion marker in between (marker-sweep.ts).
    if (!last) return 0;
  } else {
    const seen = d.view.basis(key);
    if (last && last.kind === 'PUT' && last.parsed && last.revision !== expect && seen === basis && seen?.revision === expect && sameContent(seen.value, last.value)) {
      d.renumbered(key, expect, last.revision);
      d.view.adopt(key, basis, { revision: last.revision, kind: last.kind, raw: last.value, parsed: last.parsed }); // same content: the revision only
      return last.revision;
    }
  }
  // The winner, shown at once, unless the watch brought the key's news first (kv-view-content.ts adopt).
  if (last) d.view.adopt(key, basis, { revision: last.revision, kind: last.kind, raw: last.value, parsed: last.parsed });
  throw expect === 0 ? conflict(key, 0) : o.conflictErr;
}
