// A KeyedStore on one JetStream KV bucket (hub/store/types.ts has the
// guarantees; test/integration/cluster-contract.test.ts checks them on a real
// 3-node cluster).
//
// Reads come from a local view (kv-view.ts) that a watch on the whole bucket
// keeps current, so they never wait and keep answering while NATS is away.
// Writes go straight to the bucket's subjects as JetStream publishes (not
// through kv.put) so each carries a message id and a short per-attempt
// timeout (publish.ts); a compare-and-swap is the server's "expected last
// subject sequence" (plus a stream-wide guard on servers that check it too
// early, kv-cas.ts), so of hubs racing on one revision exactly one wins; the
// revision is the entry's stream sequence.
//
// Around it: kv-load.ts (the read side, the watch into the view),
// kv-rebase.ts (a refused compare-and-swap checked with the leader), kv-cas.ts
// (the guard old servers need), publish.ts (one durable publish).
import { headers, nuid, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, PubAck } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { KeyedStore, RecordProgress, StoreChange, Versioned, WriteOptions } from '../store/types.js';
import { exactSubjectCheck, publishCas, type CasGuard } from './kv-cas.js';
import { followInto, loadedWithin } from './kv-load.js';
import { conflict, rebaseOnLeader } from './kv-rebase.js';
import { KvView, type Op } from './kv-view.js';
import { encodeToken } from './names.js';
import { publishDurable, untilAnswered, type DurableWrite, type WriteTiming } from './publish.js';
import type { SlotGate } from './slot-gate.js';
import { RetryQueue } from './retry-queue.js';
import { WriteBack } from './kv-write-back.js';

export interface KvStoreDeps<T> {
  nc: NatsConnection;
  js: JetStreamClient;
  /** Short-timeout requests to the bucket's stream leader (the CAS guard's reads). */
  jsm: JetStreamManager;
  kv: KV;
  bucket: string;
  accept: (key: string, value: unknown) => value is T;
  /** Given: the records a reload loaded that can still change are checked against the stream leader (kv-verify.ts). */
  progress?: RecordProgress<T>;
  log: Logger;
  requestTimeoutMs: number;
  writeTimeoutMs: number;
  /** This hub's bulk-write gate (slot-gate.ts); absent: writes never wait for a slot (the holds store). */
  gate?: SlotGate;
}

/** Failed writes are tried again this often (the journal's disk-full retry uses the same). */
const RETRY_MS = 2000;
const RETRY_CONCURRENCY = 64;
/** Room left in a message for the subject and headers. */
const HEADROOM = 1024;

const DEL = 'DEL';

export class NatsKeyedStore<T> implements KeyedStore<T> {
  private readonly view: KvView<T>;
  private readonly watchers = new Set<(c: StoreChange<T>) => void>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly retries: RetryQueue;
  /** Message ids: unique per store instance and write, the same for every attempt of one write. */
  private readonly idBase = nuid.next();
  private readonly guard: CasGuard;
  private closed = false;
  /** The read side (kv-load.ts): the watch and the checks of its reloads. */
  private reading: { stop: () => Promise<void> } | null = null;
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
  /** Acknowledged records NATS lost, written again (kv-write-back.ts). */
  private readonly writeBack: WriteBack<T>;
  /** Logged once: a compare-and-swap was re-based on the leader's numbering (kv-leader.ts). */
  private renumbered = false;
  private readonly stream: string;

  private constructor(private readonly d: KvStoreDeps<T>) {
    const log = d.log;
    this.view = new KvView<T>(d.accept, {
      change: (c) => {
        for (const fn of [...this.watchers]) {
          try { fn(c); } catch (err) { log.error({ key: c.key, err: (err as Error).message }, 'a store watcher threw; carrying on'); }
        }
      },
      refused: (key, revision) => log.warn({ bucket: d.bucket, key, revision }, 'dropping a record that fails validation'),
      superseded: (key, gen, revision) => log.warn({ bucket: d.bucket, key, write: gen, revision }, 'a write NATS did not acknowledge in time was superseded by a newer change; not retrying it'),
      regressed: (key, value, revision, loaded) => this.writeBack.lost(key, value, revision, loaded),
    }, d.progress);
    this.retries = new RetryQueue({ everyMs: RETRY_MS, concurrency: RETRY_CONCURRENCY, log });
    this.writeBack = new WriteBack<T>({ bucket: d.bucket, log, set: (k, v, o) => this.set(k, v, o), closed: () => this.closed });
    const stream = `KV_${d.bucket}`;
    this.stream = stream;
    this.guard = {
      serverVersion: () => d.nc.info?.version,
      needed: () => !exactSubjectCheck(d.nc.info?.version),
      streamLastGuess: () => this.view.knownRevision,
      subjectLast: async (subject) => (await d.jsm.streams.getMessage(stream, { last_by_subj: subject }))?.seq ?? 0,
      streamLast: async () => (await d.jsm.streams.info(stream)).state.last_seq,
    };
  }

  /** Open over an existing bucket handle; resolves once the local view holds the whole bucket. */
  static async open<T>(d: KvStoreDeps<T>, loadTimeoutMs: number): Promise<NatsKeyedStore<T>> {
    const s = new NatsKeyedStore<T>(d);
    try {
      await s.load(loadTimeoutMs);
    } catch (err) {
      await s.close();
      throw err instanceof BentoError ? err : new BentoError('CLUSTER_UNAVAILABLE', `cannot read bucket ${d.bucket}: ${(err as Error).message}`, { cause: err });
    }
    return s;
  }

  get(key: string): T | undefined { return this.view.get(key); }
  entry(key: string): Versioned<T> | undefined { return this.view.entry(key); }
  has(key: string): boolean { return this.view.has(key); }
  keys(): IterableIterator<string> { return this.view.keys(); }
  values(): IterableIterator<T> { return this.view.values(); }
  get size(): number { return this.view.size; }
  /** Writes wait at this hub's gate (types.ts KeyedStore.busy). */
  get busy(): boolean { return (this.d.gate?.stats.waiting ?? 0) > 0; }

  set(key: string, value: T, opts?: WriteOptions): Promise<number> {
    let data: Uint8Array;
    try { data = this.encode(key, value); } catch (err) { return Promise.reject(err); }
    const op: Op = { op: 'set', value };
    if (opts?.expectRevision !== undefined) return this.track(this.cas(key, op, data, undefined, opts.expectRevision, opts.soleWriter === true));
    const gen = this.view.beginPlain(key, op);
    return this.track(this.write(key, gen, op, this.plainWrite(key, gen, data)));
  }

  delete(key: string, opts?: WriteOptions): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    const op: Op = { op: 'delete' };
    const expect = opts?.expectRevision;
    if (expect === undefined) {
      if (!this.view.has(key)) return Promise.resolve();
      const gen = this.view.beginPlain(key, op);
      return this.track(this.write(key, gen, op, this.plainWrite(key, gen, new Uint8Array(0), delHeaders()))).then(() => undefined);
    }
    // "Delete it if it does not exist" is a no-op, or a conflict when it does.
    if (expect === 0) return this.view.has(key) ? Promise.reject(conflict(key, 0)) : Promise.resolve();
    return this.track(this.cas(key, op, new Uint8Array(0), delHeaders(), expect, opts?.soleWriter === true)).then(() => undefined);
  }

  watch(fn: (change: StoreChange<T>) => void): () => void {
    this.watchers.add(fn);
    return () => { this.watchers.delete(fn); };
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.settled();
    this.closed = true;
    await this.retries.close();
    await this.reading?.stop();
    this.watchers.clear();
  }

  // --- writes ---

  private encode(key: string, value: T): Uint8Array {
    if (this.closed) throw this.closedError();
    const json = JSON.stringify(value);
    if (json === undefined) throw new BentoError('INTERNAL', `${this.d.bucket}/${key}: value is not JSON`);
    const data = new TextEncoder().encode(json);
    const max = this.d.nc.info?.max_payload ?? 1024 * 1024;
    if (data.length + HEADROOM > max) {
      throw new BentoError('STATE_WRITE_FAILED', `${this.d.bucket}/${key}: record of ${data.length} bytes is larger than NATS accepts (max_payload ${max})`);
    }
    return data;
  }

  private plainWrite(key: string, gen: number, data: Uint8Array, hdrs?: MsgHdrs): DurableWrite {
    return { subject: this.subject(key), data, msgID: `${this.idBase}.${gen}`, ...(hdrs ? { headers: hdrs } : {}) };
  }

  private async cas(key: string, op: Op, data: Uint8Array, hdrs: MsgHdrs | undefined, expect: number, soleWriter: boolean): Promise<number> {
    const gen = this.view.beginCas(key, expect);
    const w: DurableWrite = { ...this.plainWrite(key, gen, data, hdrs), expectLastSubjectSeq: expect, ...(soleWriter ? { soleWriter } : {}) };
    try {
      return await this.write(key, gen, op, w);
    } catch (err) {
      if (!(err instanceof BentoError) || err.code !== 'STATE_CONFLICT') throw err;
      const again = await this.rebase(key, expect, err);
      const gen2 = this.view.beginCas(key, again);
      return this.write(key, gen2, op, { ...this.plainWrite(key, gen2, data, hdrs), expectLastSubjectSeq: again, ...(soleWriter && expect !== 0 ? { soleWriter } : {}) });
    }
  }

  /** A refused compare-and-swap, checked with the stream leader (kv-rebase.ts). */
  private rebase(key: string, expect: number, conflictErr: BentoError): Promise<number> {
    return rebaseOnLeader({
      jsm: this.d.jsm, stream: this.stream, bucket: this.d.bucket, view: this.view,
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
      this.view.acked(key, gen, ack.seq, op);
      return ack.seq;
    } catch (err) {
      if (!(err instanceof BentoError) || err.code !== 'STATE_WRITE_FAILED' || this.closed) {
        this.view.dropped(key, gen);
        throw err;
      }
      if (!this.view.isLatest(key, gen)) throw err; // a newer write of this key carries on
      this.view.failed(key, gen);
      this.d.log.error({ bucket: this.d.bucket, key, err: err.message }, 'NATS did not acknowledge a write in time; retrying every 2 s');
      this.retries.add(key, () => this.retry(key, gen, op, w));
      throw err;
    }
  }

  private async retry(key: string, gen: number, op: Op, w: DurableWrite): Promise<'done' | 'again'> {
    if (!this.view.isLatest(key, gen)) return 'done';
    const sending = this.publish(w, key, gen);
    this.retrying.set(key, sending);
    const sent = (): void => { if (this.retrying.get(key) === sending) this.retrying.delete(key); };
    sending.then(sent, sent);
    try {
      const ack = await sending;
      this.view.acked(key, gen, ack.seq, op);
      this.d.log.info({ bucket: this.d.bucket, key, revision: ack.seq }, 'a write NATS had not acknowledged is durable now');
      return 'done';
    } catch (err) {
      if (err instanceof BentoError && err.code === 'STATE_WRITE_FAILED' && this.view.isLatest(key, gen) && !this.closed) return 'again';
      this.view.dropped(key, gen);
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
      abandoned: () => this.closed || !this.view.isLatest(key, gen),
    };
  }

  private track<R>(p: Promise<R>): Promise<R> {
    this.inflight.add(p);
    const done = (): void => { this.inflight.delete(p); };
    p.then(done, done);
    return p;
  }

  private subject(key: string): string {
    return `$KV.${this.d.bucket}.${encodeToken(key)}`;
  }

  private closedError(): BentoError {
    return new BentoError('STATE_WRITE_FAILED', `store ${this.d.bucket} is closed`);
  }

  // --- the bucket's changes into the view ---

  private async load(timeoutMs: number): Promise<void> {
    await untilAnswered(() => this.d.kv.status(), timeoutMs);
    const f = followInto({
      kv: this.d.kv, jsm: this.d.jsm, nc: this.d.nc, bucket: this.d.bucket, stream: this.stream, log: this.d.log, view: this.view,
      ...(this.d.progress ? { check: { accept: this.d.accept, progress: this.d.progress } } : {}),
    });
    this.reading = f;
    // Loaded means the watch is in place too: a change made after open() resolves is never folded into the first snapshot.
    await loadedWithin(f.loaded, timeoutMs, this.d.bucket);
  }
}

function delHeaders(): MsgHdrs {
  const h = headers();
  h.set('KV-Operation', DEL);
  return h;
}
