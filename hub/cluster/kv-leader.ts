// A key's last record as the bucket stream's LEADER holds it, and why a
// compare-and-swap is re-based on it.
//
// nats-server 2.9.10 (Debian 12) can number one stream differently on its
// replicas: after kill -9 and restart of a server, the restarted replica
// miscounts the publishes that were refused when applied (the stream-wide
// "expected last sequence" the CAS guard sends, kv-cas.ts, and racing
// creates), so from then on it stores every message under another sequence
// than the others (test/soak/nats-diverge.ts shows it with the client library
// alone; docs/cluster.md "Soak"). The content is the same everywhere; only the
// revisions differ. A hub's view takes revisions from its watch (a consumer
// on ONE replica) and from its acks (the leader), while the expected revision
// of a compare-and-swap is checked by the leader. A hub whose watch ran on
// the renumbered replica then had every later compare-and-swap of a record
// refused ("changed since revision r") although nobody had changed it: its
// job records stopped at their first write (found by the soak).
//
// So a refused compare-and-swap asks the leader (STREAM.MSG.GET, never a
// direct get, which any replica answers) for the key's last record: the same
// content as the record the write was based on means only the numbering
// differs, and the write is sent again expecting the leader's revision; other
// content is a real conflict, and the view takes the leader's record so the
// caller sees the winner at once.
import type { JetStreamManager } from '@nats-io/jetstream';
import { decodeToken } from './names.js';

export interface LeaderRecord {
  revision: number;
  kind: 'PUT' | 'DEL' | 'PURGE';
  /** The decoded JSON of a PUT (undefined if it does not parse). */
  value: unknown;
  parsed: boolean;
  /** When the leader stored it, ms since the epoch. */
  atMs: number;
}

/** SUBJECT's last record in STREAM as its leader holds it; null when the subject has none. Rejects when the leader does not answer. */
export async function leaderLast(jsm: JetStreamManager, stream: string, subject: string): Promise<LeaderRecord | null> {
  const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
  if (!m) return null;
  const op = m.header?.get('KV-Operation');
  const kind = op === 'DEL' || op === 'PURGE' ? op : 'PUT';
  const atMs = m.time.getTime();
  if (kind !== 'PUT') return { revision: m.seq, kind, value: undefined, parsed: false, atMs };
  try {
    return { revision: m.seq, kind, value: JSON.parse(new TextDecoder().decode(m.data)), parsed: true, atMs };
  } catch {
    return { revision: m.seq, kind, value: undefined, parsed: false, atMs };
  }
}

/**
 * Every key of BUCKET that the stream's LEADER holds a record of (its last
 * one may be a deletion marker), from STREAM.INFO with a subject filter,
 * which only the leader answers; the client pages past the server's 100,000
 * subjects per answer. Keys no Bento hub wrote are left out. Rejects when the
 * leader does not answer. (60,000 keys: about 0.4 s on the development
 * machine, one answer of ~2.5 MB.)
 */
export async function leaderKeys(jsm: JetStreamManager, stream: string, bucket: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const si = await jsm.streams.info(stream, { subjects_filter: `${prefix}>` });
  const out: string[] = [];
  for (const subject of Object.keys(si.state.subjects ?? {})) {
    const key = subject.startsWith(prefix) ? decodeToken(subject.slice(prefix.length)) : null;
    if (key !== null) out.push(key);
  }
  return out;
}

/** Do two decoded records say the same thing (the writer serialises them the same way, so key order matches)? */
export function sameContent(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Does the stream LEADER hold at SEQ the message a watch delivered as SEQ
 * (same subject and bytes)? True: the watch's replica numbers the stream as
 * the leader does (at least up to there). False: another numbering. Null:
 * the leader no longer has SEQ (its key was written again), so it cannot say.
 */
export async function leaderHoldsAt(jsm: JetStreamManager, stream: string, seq: number, subject: string, data: Uint8Array): Promise<boolean | null> {
  const m = await jsm.streams.getMessage(stream, { seq });
  if (!m) return null;
  return m.subject === subject && Buffer.compare(Buffer.from(m.data), Buffer.from(data)) === 0;
}
