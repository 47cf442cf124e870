// The write side of a NATS keyed store (kv-store.ts): a set or delete from
// the moment the view is told of it until the bucket acknowledged it, or it
// conflicted or was superseded. Apart from the store, which decides what a
// write means (hub/store/types.ts); this is how one becomes durable.
//
// Writes go straight to the bucket's subjects as JetStream publishes (not
// through kv.put) so each carries a message id and a short per-attempt
// timeout (publish.ts); a compare-and-swap is the server's "expected last
// subject sequence" (plus a stream-wide guard on servers that check it too
// early, kv-cas.ts), so of hubs racing on one revision exactly one wins; the
// revision is the entry's stream sequence. A refused compare-and-swap is
// checked with the stream leader (kv-rebase.ts). A write past its deadline
// is rejected to its caller and retried in the background (retry-queue.ts).
import { headers, nuid, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, PubAck } from '@nats-io/jetstream';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { exactSubjectCheck, publishCas, type CasGuard } from './kv-cas.js';
import { rebaseOnLeader, type RebaseDeps } from './kv-rebase.js';
import type { KvView, Op } from './kv-view.js';
import { encodeToken } from './names.js';
import { publishDurable, type DurableWrite, type WriteTiming } from './publish.js';
import type { SlotGate } from './slot-gate.js';
import { RetryQueue } from './retry-queue.js';

export interface KvWriterDeps<T> {
  /** Its server's version (the CAS guard, the log). */
  nc: NatsConnection;
  js: JetStreamClient;
  /** Short-timeout requests to the bucket's stream leader (the CAS guard's reads, a refused CAS's lookup). */
  jsm: JetStreamManager;
  bucket: string;
  stream: string;
  view: Pick<KvView<T>, 'beginPlain' | 'beginCas' | 'isLatest' | 'acked' | 'failed' | 'dropped' | 'knownRevision'> & RebaseDeps<T>['view'];
  log: Logger;
  requestTimeoutMs: number;
  writeTimeoutMs: number;
  /** This hub's bulk-write gate (slot-gate.ts); absent: writes never wait for a slot. */
  gate?: SlotGate;
  /** The store is closed: no write is retried any more. */
  closed(): boolean;
}

/** A compare-and-swap of KEY on revision EXPECT (0: the key must not exist); DATA is empty for a delete. */
export interface CasWrite {
  key: string;
  op: Op;
  data: Uint8Array;
  expect: number;
  /** store/types.ts WriteOptions.soleWriter. */
  soleWriter: boolean;
}

/** Failed writes are tried again this often (the journal's disk-full retry uses the same). */
const RETRY_MS = 2000;
const RETRY_CONCURRENCY = 64;

const DEL = 'DEL';
/** Re-bases of one create at most (cas()). */
const CREATE_REBASES = 3;

export class KvWriter<T> {
  private readonly retries: RetryQueue;
  /** Message ids: unique per store instance and write, the same for every attempt of one write. */
  private readonly idBase = nuid.next();
  private readonly guard: CasGuard;
  /** Guarded compare-and-swaps (kv-cas.ts) of this store, one at a time: see publish(). */
  private guardedTail: Promise<unknown> = Promise.resolve();
  /**
   * Per key, the background retry of an older write on the wire (retry()):
   * a newer write of the key is sent only once it settled, so it cannot land
   * after the newer one. (Callers write a record once at a time, but a write
   * past its deadline is retried after its caller moved on. Suspected when a
   * soak read a job `running` after `success`; that turned out to be a
   * diverged 2.9.10 replica, docs/cluster.md "Soak", but the window is real.)
   */
  private readonly retrying = new Map<string, Promise<unknown>>();
  /** Logged once: a compare-and-swap was re-based on the leader's numbering (kv-leader.ts). */
  private renumbered = false;

  constructor(private readonly d: KvWriterDeps<T>) {
    this.retries = new RetryQueue({ everyMs: RETRY_MS, concurrency: RETRY_CONCURRENCY, log: d.log });
    this.guard = {
      serverVersion: () => d.nc.info?.version,
      needed: () => !exactSubjectCheck(d.nc.info?.version),
      streamLastGuess: () => d.view.knownRevision,
      subjectLast: async (subject) => (await d.jsm.streams.getMessage(d.stream, { last_by_subj: subject }))?.seq ?? 0,
      streamLast: async () => (await d.jsm.streams.info(d.stream)).state.last_seq,
    };
  }

  /** A plain set (DATA: the encoded value) or delete (DATA empty) of KEY: shown in the view at once. */
  plain(key: string, op: Op, data: Uint8Array): Promise<number> {
    const gen = this.d.view.beginPlain(key, op);
    return this.write(key, gen, op, this.plainWrite(key, gen, data, delHeadersFor(op)));
  }

  /**
   * A refused compare-and-swap is re-based once (kv-rebase.ts). A create (0)
   * may be re-based up to CREATE_REBASES times: re-based on the key's
   * deletion marker, it is refused again when a `cluster sweep` purges that
   * marker before it lands (marker-sweep.ts), and is then made on 0 again.
   */
  async cas(c: CasWrite): Promise<number> {
    const { key, op, data, expect, soleWriter } = c;
    const hdrs = delHeadersFor(op);
    let on = expect;
    for (let round = 0; ; round++) {
      const gen = this.d.view.beginCas(key, on);
      const w: DurableWrite = { ...this.plainWrite(key, gen, data, hdrs), expectLastSubjectSeq: on, ...(soleWriter && (round === 0 || expect !== 0) ? { soleWriter } : {}) };
      try {
        return await this.write(key, gen, op, w);
      } catch (err) {
        if (!(err instanceof BentoError) || err.code !== 'STATE_CONFLICT' || round >= (expect === 0 ? CREATE_REBASES : 1)) throw err;
        on = await this.rebase(key, expect, err);
      }
    }
  }

  /** Stop retrying (the store is closing). */
  close(): Promise<void> {
    return this.retries.close();
  }

  private plainWrite(key: string, gen: number, data: Uint8Array, hdrs?: MsgHdrs): DurableWrite {
    return { subject: this.subject(key), data, msgID: `${this.idBase}.${gen}`, ...(hdrs ? { headers: hdrs } : {}) };
  }

  /** A refused compare-and-swap, checked with the stream leader (kv-rebase.ts). */
  private rebase(key: string, expect: number, conflictErr: BentoError): Promise<number> {
    return rebaseOnLeader({
      jsm: this.d.jsm, stream: this.d.stream, bucket: this.d.bucket, view: this.d.view,
      renumbered: (k, view, leader) => {
        if (this.renumbered) return;
        this.renumbered = true;
        this.d.log.warn({ bucket: this.d.bucket, key: k, view, leader, server: this.d.nc.info?.version },
          'the bucket\'s replicas number its records differently (a nats-server before 2.10 after a restart); compare-and-swaps are re-based on the leader\'s revision');
      },
    }, { key, subject: this.subject(key), expect, conflictErr });
  }

  /** Publish W until acknowledged; past the deadline, reject and keep retrying it in the background. */
  private async write(key: string, gen: number, op: Op, w: DurableWrite): Promise<number> {
    const older = this.retrying.get(key);
    if (older) await older.then(() => undefined, () => undefined);
    try {
      const ack = await this.publish(w, key, gen);
      this.d.view.acked(key, gen, ack.seq, op);
      return ack.seq;
    } catch (err) {
      if (!(err instanceof BentoError) || err.code !== 'STATE_WRITE_FAILED' || this.d.closed()) {
        this.d.view.dropped(key, gen);
        throw err;
      }
      if (!this.d.view.isLatest(key, gen)) {
        // A newer write of this key carries on. If that one is a compare-and-swap, this write's value would
        // stay shown (pending) until it acks, and for good if it conflicts: this one never will.
        this.d.view.dropped(key, gen);
        throw err;
      }
      this.d.view.failed(key, gen);
      this.d.log.error({ bucket: this.d.bucket, key, err: err.message }, 'NATS did not acknowledge a write in time; retrying every 2 s');
      this.retries.add(key, () => this.retry(key, gen, op, w));
      throw err;
    }
  }

  private async retry(key: string, gen: number, op: Op, w: DurableWrite): Promise<'done' | 'again'> {
    if (!this.d.view.isLatest(key, gen)) return 'done';
    const sending = this.publish(w, key, gen);
    this.retrying.set(key, sending);
    const sent = (): void => { if (this.retrying.get(key) === sending) this.retrying.delete(key); };
    sending.then(sent, sent);
    try {
      const ack = await sending;
      this.d.view.acked(key, gen, ack.seq, op);
      this.d.log.info({ bucket: this.d.bucket, key, revision: ack.seq }, 'a write NATS had not acknowledged is durable now');
      return 'done';
    } catch (err) {
      if (err instanceof BentoError && err.code === 'STATE_WRITE_FAILED' && this.d.view.isLatest(key, gen) && !this.d.closed()) return 'again';
      this.d.view.dropped(key, gen);
      if (err instanceof BentoError && err.code === 'STATE_CONFLICT') {
        this.d.log.warn({ bucket: this.d.bucket, key }, 'a retried compare-and-swap lost to a newer change; dropped');
      }
      return 'done';
    }
  }

  /** A plain write as it is; a compare-and-swap through the guard old servers need (kv-cas.ts). */
  private publish(w: DurableWrite, key: string, gen: number): Promise<PubAck> {
    const t = this.timing(key, gen);
    // A sole writer (WriteOptions.soleWriter) needs no guard against racing writers: the key's revision says it all.
    if (w.expectLastSubjectSeq === undefined || w.soleWriter || !this.guard.needed()) return publishDurable(this.d.js, w, t);
    // The guard expects the whole bucket's last sequence, so of this hub's guarded writes in flight at once
    // only one could land per round trip and every other one would pay a refusal and a lookup: one at a time
    // instead (a failover's claims: 540 took 19 s racing, docs/cluster.md). Each one's deadline starts at its turn.
    const run = this.guardedTail.then(() => publishCas(this.d.js, w, t, this.guard));
    this.guardedTail = run.catch(() => undefined);
    return run;
  }

  private timing(key: string, gen: number): WriteTiming {
    return {
      attemptTimeoutMs: this.d.requestTimeoutMs,
      totalMs: this.d.writeTimeoutMs,
      ...(this.d.gate ? { gate: this.d.gate } : {}),
      abandoned: () => this.d.closed() || !this.d.view.isLatest(key, gen),
    };
  }

  private subject(key: string): string {
    return `$KV.${this.d.bucket}.${encodeToken(key)}`;
  }
}

/** A deletion is an empty message marked as one, as the KV client writes it. */
function delHeadersFor(op: Op): MsgHdrs | undefined {
  if (op.op !== 'delete') return undefined;
  const h = headers();
  h.set('KV-Operation', DEL);
  return h;
}
