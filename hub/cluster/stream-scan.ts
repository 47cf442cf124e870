// The last message of every subject of a stream that matches a filter, read
// in bounded batches: what `cluster sweep` walks, an object store's metadata
// (object-scan.ts) and a KV bucket's keys (marker-scan.ts). The client
// library's own listings (ObjectStore.list(), KV keys()) gather everything in
// memory first, which for a fleet's uploaded logs or pruned jobs can be
// millions of entries. An ordered pull consumer delivering the last message
// per subject reads them BATCH at a time, with no more in memory than one
// batch; headersOnly leaves the bodies on the server (a KV record's value,
// when only its KV-Operation header is wanted).
//
// What the scan sees is a snapshot of the stream as the scan starts: a
// message written after that (a new object, a key written again, a delete
// marker the sweep itself writes) ends it rather than extends it. A subject
// written in the moment between reading the stream's last sequence and
// creating the consumer is missed; for the sweep it is young, and stays anyway.
import { DeliverPolicy, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';

export interface StreamScanOptions {
  /** Messages asked for at once (the most held in memory). */
  batch?: number;
  /** How long one batch may take to come; an empty stream ends the scan after this. */
  expiresMs?: number;
}

/** The last message of each subject of STREAM matching FILTER, in stream order, each once. */
export async function* scanLastPerSubject(js: JetStreamClient, stream: string, filter: string, o: StreamScanOptions & { headersOnly?: boolean } = {}): AsyncGenerator<JsMsg> {
  // Where the snapshot ends: a message numbered after this was written since the scan began.
  const { state } = await (await js.jetstreamManager(false)).streams.info(stream);
  if (state.messages === 0) return;
  const consumer = await js.consumers.get(stream, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.LastPerSubject,
    ...(o.headersOnly ? { headers_only: true } : {}),
  });
  for (;;) {
    const msgs = await consumer.fetch({ max_messages: o.batch ?? 256, expires: o.expiresMs ?? 5000 });
    let got = 0;
    let done = false;
    for await (const m of msgs) {
      got++;
      // Delivered in stream order: once one is past the snapshot, every earlier one has come.
      if (m.info.streamSequence > state.last_seq) { done = true; break; }
      yield m;
      if (m.info.pending === 0) { done = true; break; }
    }
    if (done || got === 0) {
      msgs.stop();
      return;
    }
  }
}
