// A KeyedStore on one JetStream KV bucket (hub/store/types.ts has the
// guarantees; test/integration/cluster-contract.test.ts checks them on a real
// 3-node cluster): what a read, a set or a delete means for the bucket, and
// the store's life (open, watchers, close).
//
// Reads come from a local view (kv-view.ts) that a watch on the whole bucket
// keeps current (kv-load.ts), so they never wait and keep answering while
// NATS is away. Writes are published until acknowledged and retried in the
// background past their deadline (kv-writer.ts); an acknowledged record NATS
// lost is written again (kv-write-back.ts).
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { KeyedStore, RecordProgress, StoreChange, Versioned, WriteOptions } from '../store/types.js';
import { followInto, loadedWithin } from './kv-load.js';
import { leaderLast } from './kv-leader.js';
import { conflict } from './kv-rebase.js';
import { KvView, type Op } from './kv-view.js';
import { KvWriter } from './kv-writer.js';
import { encodeToken } from './names.js';
import { untilAnswered } from './publish.js';
import type { SlotGate } from './slot-gate.js';
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

/** Room left in a message for the subject and headers. */
const HEADROOM = 1024;

export class NatsKeyedStore<T> implements KeyedStore<T> {
  private readonly view: KvView<T>;
  private readonly watchers = new Set<(c: StoreChange<T>) => void>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly writer: KvWriter<T>;
  private closed = false;
  /** The read side (kv-load.ts): the watch and the checks of its reloads. */
  private reading: { stop: () => Promise<void> } | null = null;
  /** Acknowledged records NATS lost, written again (kv-write-back.ts). */
  private readonly writeBack: WriteBack<T>;
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
    this.writeBack = new WriteBack<T>({ bucket: d.bucket, log, set: (k, v, o) => this.set(k, v, o), closed: () => this.closed });
    this.stream = `KV_${d.bucket}`;
    this.writer = new KvWriter<T>({
      nc: d.nc, js: d.js, jsm: d.jsm, bucket: d.bucket, stream: this.stream, view: this.view, log,
      requestTimeoutMs: d.requestTimeoutMs, writeTimeoutMs: d.writeTimeoutMs, gate: d.gate, closed: () => this.closed,
    });
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

  /** From the stream leader (kv-leader.ts): the view is a watch on one replica, which may be behind. */
  async latest(key: string): Promise<Versioned<T> | undefined> {
    let r;
    try {
      r = await leaderLast(this.d.jsm, this.stream, `$KV.${this.d.bucket}.${encodeToken(key)}`);
    } catch (err) {
      throw new BentoError('CLUSTER_UNAVAILABLE', `cannot read ${this.d.bucket}/${key} at the stream leader: ${(err as Error).message}`, { cause: err });
    }
    if (!r || r.kind !== 'PUT') return undefined;
    if (!r.parsed || !this.d.accept(key, r.value)) {
      this.d.log.warn({ bucket: this.d.bucket, key, revision: r.revision }, 'the stream leader\'s record fails validation; taking it as absent');
      return undefined;
    }
    return { value: r.value, revision: r.revision };
  }
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
    if (opts?.expectRevision !== undefined) return this.track(this.writer.cas({ key, op, data, expect: opts.expectRevision, soleWriter: opts.soleWriter === true }));
    return this.track(this.writer.plain(key, op, data));
  }

  delete(key: string, opts?: WriteOptions): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    const op: Op = { op: 'delete' };
    const expect = opts?.expectRevision;
    if (expect === undefined) {
      if (!this.view.has(key)) return Promise.resolve();
      return this.track(this.writer.plain(key, op, new Uint8Array(0))).then(() => undefined);
    }
    // "Delete it if it does not exist" is a no-op, or a conflict when it does.
    if (expect === 0) return this.view.has(key) ? Promise.reject(conflict(key, 0)) : Promise.resolve();
    return this.track(this.writer.cas({ key, op, data: new Uint8Array(0), expect, soleWriter: opts?.soleWriter === true })).then(() => undefined);
  }

  watch(fn: (change: StoreChange<T>) => void): () => void {
    this.watchers.add(fn);
    return () => { this.watchers.delete(fn); };
  }

  abandon(key: string): void {
    // Its retries and further attempts stop once it is no longer the key's latest write (kv-writer.ts).
    this.view.abandon(key);
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.settled();
    this.closed = true;
    await this.writer.close();
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

  private track<R>(p: Promise<R>): Promise<R> {
    this.inflight.add(p);
    const done = (): void => { this.inflight.delete(p); };
    p.then(done, done);
    return p;
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
