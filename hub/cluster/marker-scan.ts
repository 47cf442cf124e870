// The NATS side of purging a KV bucket's old deletion markers
// (marker-sweep.ts has the rules): the bucket's keys, a batch at a time; a
// key's last record at the stream's leader; and the purge, bounded by
// sequence.
//
// Why a purge bounded by sequence ({ filter: subject, seq: marker + 1 },
// "everything on the subject below seq") and never { keep: 0 }: another hub
// may write the key between the look and the purge (a queued job's id used
// again, a host added again), and the bound can never reach that newer
// write, whatever the timing. nats-server 2.9.10 has it
// (test/integration/cluster-marker-sweep.test.ts).
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { leaderLast } from './kv-leader.js';
import { scanLastPerSubject, type StreamScanOptions } from './stream-scan.js';

/** One key's last record as the scan or the leader has it: its subject, sequence, whether it is a deletion marker, and when it was written. */
export interface KeyRecord { subject: string; seq: number; marker: boolean; atMs: number }

export interface BucketMarkers {
  /** Every key's last record, each once, a batch at a time (bodies left on the server). */
  scan(): AsyncIterable<KeyRecord>;
  /** SUBJECT's last record at the stream's leader (never a replica, which may lag or number otherwise); null: none. */
  leaderLast(subject: string): Promise<KeyRecord | null>;
  /** Remove SUBJECT's records below SEQ (never one at or above it); how many went. */
  purgeBelow(subject: string, seq: number): Promise<number>;
}

const isMarker = (op: string | undefined): boolean => op === 'DEL' || op === 'PURGE';

/**
 * The markers side of KV bucket BUCKET (stream KV_<bucket>), or null when the
 * bucket does not exist (never created here: nothing in it to purge).
 */
export async function bucketMarkers(o: { js: JetStreamClient; jsm: JetStreamManager; bucket: string; scan?: StreamScanOptions }): Promise<BucketMarkers | null> {
  const stream = `KV_${o.bucket}`;
  try {
    await o.jsm.streams.info(stream);
  } catch (err) {
    if ((err as Error).message === 'stream not found') return null;
    throw err;
  }
  return {
    async *scan() {
      for await (const m of scanLastPerSubject(o.js, stream, `$KV.${o.bucket}.>`, { ...o.scan, headersOnly: true })) {
        yield { subject: m.subject, seq: m.info.streamSequence, marker: isMarker(m.headers?.get('KV-Operation')), atMs: m.info.timestampNanos / 1e6 };
      }
    },
    async leaderLast(subject) {
      const r = await leaderLast(o.jsm, stream, subject);
      return r && { subject, seq: r.revision, marker: r.kind !== 'PUT', atMs: r.atMs };
    },
    async purgeBelow(subject, seq) {
      return (await o.jsm.streams.purge(stream, { filter: subject, seq })).purged;
    },
  };
}
