// Compare-and-swap on a KV key that holds on every nats-server version.
//
// The problem (nats-server#4320, fixed in 2.9.21; Debian 12 ships 2.9.10):
// on a replicated stream the server checks "expected last subject sequence"
// (what kv.update sends) only on the leader, before it proposes the write to
// the replicas, and not again when the write is applied. Several writers
// racing from the same revision all pass that early check, and all win: six
// hubs racing on one key had up to six winners in 94 of 200 rounds
// (test/integration/cluster-cas.test.ts). Creating a key (expected sequence
// 0) is checked when applied, and so is the stream-wide "expected last
// sequence", on every version.
//
// The guard on older servers: send both. The subject check says "the key is
// still at revision r"; the stream check, exact when applied, says "and
// nothing at all was written to the bucket since we looked", so of the racing
// writers only the first applied can pass. The price is that an unrelated
// write to another key between our look and our write refuses ours too: then
// we ask the leader for the key's last revision; if it is still r we retry
// with the stream's new last sequence (the refusal reports it), else the CAS
// lost for real (STATE_CONFLICT). Bounded by the write deadline.
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { BentoError } from '../../common/protocol/errors.js';
import { publishDurable, reportedLastSequence, type DurableWrite, type WriteTiming } from './publish.js';

export interface CasGuard {
  /** The server the client talks to, e.g. "2.9.10" (nc.info.version). */
  serverVersion: () => string | undefined;
  /** Does this server need the guard (below 2.9.21)? */
  needed: () => boolean;
  /** Our best guess of the bucket stream's last sequence (the newest revision seen). */
  streamLastGuess: () => number;
  /** The sequence of the last record on SUBJECT (0: none), read from the stream leader. */
  subjectLast: (subject: string) => Promise<number>;
  /** The bucket stream's last sequence, read from the leader (when a refusal does not say). */
  streamLast: () => Promise<number>;
}

/** Does this server check "expected last subject sequence" when the write is applied (2.9.21 and later)? */
export function exactSubjectCheck(version: string | undefined): boolean {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return false;
  const [maj, min, pat] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return maj > 2 || (maj === 2 && (min > 9 || (min === 9 && pat >= 21)));
}

function isConflict(err: unknown): err is BentoError {
  return err instanceof BentoError && err.code === 'STATE_CONFLICT';
}

/** Publish W, a CAS on revision W.expectLastSubjectSeq, so that of racing writers exactly one wins. */
export async function publishCas(js: JetStreamClient, w: DurableWrite, t: WriteTiming, g: CasGuard): Promise<PubAck> {
  const r = w.expectLastSubjectSeq;
  // A create (0) is exact everywhere; a newer server checks updates exactly too.
  if (r === undefined || r === 0 || exactSubjectCheck(g.serverVersion())) return publishDurable(js, w, t);
  const started = Date.now();
  let last = Math.max(g.streamLastGuess(), r);
  // The key is read at the leader on every other refusal only. Retrying at
  // once on the number a refusal reports stays exact without that read: the
  // stream-wide check is applied exactly, so the write lands only if nothing
  // was written since the refusal, and at the refusal the leader's subject
  // check had refused a key that had moved. One round trip sooner is what
  // decides whether a slot is found while the bucket is written without
  // pause (cluster-cas: 1,300-1,900 other writes a second). A key that did
  // move is refused again at once, then read, and the CAS lost.
  let readKey = false;
  for (;;) {
    const left = t.totalMs - (Date.now() - started);
    if (left <= 0) {
      throw new BentoError('STATE_WRITE_FAILED', `${w.subject}: the bucket kept changing; no compare-and-swap slot within ${t.totalMs} ms; retrying`);
    }
    try {
      return await publishDurable(js, { ...w, expectLastSeq: last }, { ...t, totalMs: left });
    } catch (err) {
      if (!isConflict(err)) throw err;
      const told = reportedLastSequence(err);
      if (!readKey && told !== null && told !== last) {
        readKey = true;
        last = told;
        continue;
      }
      readKey = false;
      let current: number;
      try { current = await g.subjectLast(w.subject); } catch (e) {
        throw new BentoError('STATE_WRITE_FAILED', `${w.subject}: cannot read the key's revision after a refused write: ${(e as Error).message}`, { cause: e });
      }
      if (current !== r) throw err; // the key moved on: a real conflict
      last = told !== null && told !== last ? told : await g.streamLast().catch(() => last);
    }
  }
}
