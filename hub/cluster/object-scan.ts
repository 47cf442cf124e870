// Every object's metadata in an object store, read in bounded batches. The
// client library's ObjectStore.list() gathers all of them in memory first
// (its watch pushes every entry into an unbounded queue), which for a fleet's
// uploaded logs can be millions of entries; the sweep (content-sweep.ts) only
// needs to look at each once. An object store keeps each object's metadata
// as the last message on its own subject `$O.<bucket>.M.<name>` of stream
// `OBJ_<bucket>` (NATS ADR-20, the same in every client), so an ordered pull
// consumer delivering the last message per subject reads them all, BATCH at a
// time, with no more in memory than one batch.
//
// What the scan sees is a snapshot of the stream as the scan starts: a
// message written after that (a new object, or a delete marker the sweep
// itself writes) ends it rather than extends it. An object rewritten in the
// moment between reading the stream's last sequence and creating the
// consumer is missed; for the sweep it is young, and stays anyway.
import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';

/**
 * What the sweep reads of one object (the JSON of its metadata message), and
 * which version it is: NUID names its chunks, SEQ is the metadata message's
 * stream sequence (object-version.ts deletes only that version).
 */
export interface ObjectMeta { name: string; size: number; mtime: string; deleted?: boolean; nuid: string; seq: number }

export interface ObjectScanOptions {
  /** Messages asked for at once (the most held in memory). */
  batch?: number;
  /** How long one batch may take to come; an empty store ends the scan after this. */
  expiresMs?: number;
}

function meta(v: unknown, seq: number): ObjectMeta | null {
  const o = v as Partial<ObjectMeta> | null;
  if (typeof o !== 'object' || o === null || typeof o.name !== 'string') return null;
  return { name: o.name, size: typeof o.size === 'number' ? o.size : 0, mtime: typeof o.mtime === 'string' ? o.mtime : '', deleted: o.deleted === true, nuid: typeof o.nuid === 'string' ? o.nuid : '', seq };
}

/** The metadata of every object in BUCKET (the stream's name, e.g. "bento_logfiles"), deleted ones included (flagged). */
export async function* scanObjects(js: JetStreamClient, bucket: string, o: ObjectScanOptions = {}): AsyncGenerator<ObjectMeta> {
  const stream = `OBJ_${bucket}`;
  // Where the snapshot ends: a message numbered after this was written since the scan began.
  const { state } = await (await js.jetstreamManager(false)).streams.info(stream);
  if (state.messages === 0) return;
  const consumer = await js.consumers.get(stream, {
    filter_subjects: `$O.${bucket}.M.>`,
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  for (;;) {
    const msgs = await consumer.fetch({ max_messages: o.batch ?? 256, expires: o.expiresMs ?? 5000 });
    let got = 0;
    let done = false;
    for await (const m of msgs) {
      got++;
      // Delivered in stream order: once one is past the snapshot, every earlier one has come.
      if (m.info.streamSequence > state.last_seq) { done = true; break; }
      let v: ObjectMeta | null = null;
      try { v = meta(m.json(), m.info.streamSequence); } catch { /* not JSON: not an object's metadata */ }
      if (v) yield v;
      if (m.info.pending === 0) { done = true; break; }
    }
    if (done || got === 0) {
      msgs.stop();
      return;
    }
  }
}
