// Every object's metadata in an object store, read in bounded batches
// (stream-scan.ts: the client library's ObjectStore.list() gathers all of
// them in memory first, its watch pushing every entry into an unbounded
// queue, which for a fleet's uploaded logs can be millions of entries; the
// sweep, content-sweep.ts, only needs to look at each once). An object store
// keeps each object's metadata as the last message on its own subject
// `$O.<bucket>.M.<name>` of stream `OBJ_<bucket>` (NATS ADR-20, the same in
// every client), so the last message per subject is every object's.
// The scan is a snapshot of the store as it starts (stream-scan.ts).
import type { JetStreamClient } from '@nats-io/jetstream';
import { scanLastPerSubject, type StreamScanOptions } from './stream-scan.js';

/**
 * What the sweep reads of one object (the JSON of its metadata message), and
 * which version it is: NUID names its chunks, SEQ is the metadata message's
 * stream sequence (object-version.ts deletes only that version).
 */
export interface ObjectMeta { name: string; size: number; mtime: string; deleted?: boolean; nuid: string; seq: number }

export type ObjectScanOptions = StreamScanOptions;

function meta(v: unknown, seq: number): ObjectMeta | null {
  const o = v as Partial<ObjectMeta> | null;
  if (typeof o !== 'object' || o === null || typeof o.name !== 'string') return null;
  return { name: o.name, size: typeof o.size === 'number' ? o.size : 0, mtime: typeof o.mtime === 'string' ? o.mtime : '', deleted: o.deleted === true, nuid: typeof o.nuid === 'string' ? o.nuid : '', seq };
}

/** The metadata of every object in BUCKET (the stream's name, e.g. "bento_logfiles"), deleted ones included (flagged). */
export async function* scanObjects(js: JetStreamClient, bucket: string, o: ObjectScanOptions = {}): AsyncGenerator<ObjectMeta> {
  for await (const m of scanLastPerSubject(js, `OBJ_${bucket}`, `$O.${bucket}.M.>`, o)) {
    let v: ObjectMeta | null = null;
    try { v = meta(m.json(), m.info.streamSequence); } catch { /* not JSON: not an object's metadata */ }
    if (v) yield v;
  }
}
