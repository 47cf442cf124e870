// A StateBackend in memory, for unit tests of logic (the scheduler, the read
// model). Never proof that a real backend works: those pass the same contract
// tests on their own engines (test/unit/store-contract-file.test.ts,
// test/integration/cluster-contract.test.ts).
//
// MemoryState is the "backing state": it outlives a backend, so a test can
// close one backend and open another over the same state, as a hub restart
// does with its files. Values cross into it as JSON text, as they would to a
// disk or a server, so a caller that mutates an object after set() cannot
// change what was stored. `failWrites` makes writes fail like a full disk
// (STATE_WRITE_FAILED) until it is cleared; the store retries on its own.
import { BentoError } from '../../common/protocol/errors.js';
import { silentLogger, type Logger } from '../../common/platform/log.js';
import type { JobOutputStore, KeyedStore, OutputLine, StateBackend, StoreChange, Versioned, WriteOptions } from './types.js';
import { pick } from './job-log.js';

interface Bucket { rev: number; records: Map<string, { json: string; revision: number }> }

export class MemoryState {
  readonly buckets = new Map<string, Bucket>();
  readonly output = new Map<string, OutputLine[]>();
  /** While set, every write fails with this message (a full disk). */
  failWrites: string | null = null;

  bucket(name: string): Bucket {
    let b = this.buckets.get(name);
    if (!b) this.buckets.set(name, (b = { rev: 0, records: new Map() }));
    return b;
  }
}

const RETRY_MS = 20;

class MemoryKeyed<T> implements KeyedStore<T> {
  private readonly view = new Map<string, Versioned<T>>();
  private readonly watchers = new Set<(c: StoreChange<T>) => void>();
  /** Keys changed in the view but not yet in the backing state. */
  private readonly dirty = new Set<string>();
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private flushing: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly bucket: Bucket, accept: (key: string, value: unknown) => value is T, private readonly state: MemoryState, private readonly log: Logger) {
    for (const [k, r] of bucket.records) {
      const v = JSON.parse(r.json) as unknown;
      if (accept(k, v)) this.view.set(k, { value: v, revision: r.revision });
      else log.warn({ key: k }, 'dropping an invalid record');
    }
  }

  get(key: string): T | undefined { return this.view.get(key)?.value; }
  entry(key: string): Versioned<T> | undefined { return this.view.get(key); }
  latest(key: string): Promise<Versioned<T> | undefined> { return Promise.resolve(this.view.get(key)); }
  has(key: string): boolean { return this.view.has(key); }
  keys(): IterableIterator<string> { return this.view.keys(); }
  *values(): IterableIterator<T> { for (const e of this.view.values()) yield e.value; }
  get size(): number { return this.view.size; }

  set(key: string, value: T, opts: WriteOptions = {}): Promise<number> {
    const refused = this.refuse(key, opts);
    if (refused) return refused;
    const revision = ++this.bucket.rev;
    this.view.set(key, { value, revision });
    this.notify({ op: 'set', key, value, revision });
    return this.write(key).then(() => revision);
  }

  delete(key: string, opts: WriteOptions = {}): Promise<void> {
    const refused = this.refuse(key, opts);
    if (refused) return refused;
    if (!this.view.has(key)) return Promise.resolve();
    const revision = ++this.bucket.rev;
    this.view.delete(key);
    this.notify({ op: 'delete', key, revision });
    return this.write(key);
  }

  watch(fn: (change: StoreChange<T>) => void): () => void {
    this.watchers.add(fn);
    return () => { this.watchers.delete(fn); };
  }

  settled(): Promise<void> { return this.flushing ?? Promise.resolve(); }

  async close(): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    await this.settled();
    this.closed = true;
  }

  private refuse(key: string, opts: WriteOptions): Promise<never> | null {
    if (this.closed) return Promise.reject(new BentoError('INTERNAL', 'memory store is closed'));
    const current = this.view.get(key)?.revision ?? 0;
    if (opts.expectRevision !== undefined && opts.expectRevision !== current) {
      return Promise.reject(new BentoError('STATE_CONFLICT', `record "${key}" is at revision ${current}, not ${opts.expectRevision}`));
    }
    return null;
  }

  private notify(change: StoreChange<T>): void {
    for (const fn of this.watchers) {
      try {
        fn(change);
      } catch (err) {
        this.log.error({ key: change.key, err: (err as Error).message }, 'store watcher failed');
      }
    }
  }

  /** Like the journal's group commit: changes of one turn reach the backing state together. */
  private write(key: string): Promise<void> {
    this.dirty.add(key);
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.flushing ??= new Promise<void>((done) => setImmediate(() => { this.flush(); this.flushing = null; done(); }));
    });
  }

  private flush(): void {
    const waiters = this.waiters;
    this.waiters = [];
    if (this.state.failWrites !== null) {
      const e = new BentoError('STATE_WRITE_FAILED', `cannot write: ${this.state.failWrites}`);
      for (const w of waiters) w.reject(e);
      this.retry ??= setTimeout(() => {
        this.retry = null;
        if (this.dirty.size > 0 && !this.closed) void this.write([...this.dirty][0]!).catch(() => undefined);
      }, RETRY_MS);
      return;
    }
    for (const k of this.dirty) {
      const e = this.view.get(k);
      if (e) this.bucket.records.set(k, { json: JSON.stringify(e.value), revision: e.revision });
      else this.bucket.records.delete(k);
    }
    this.dirty.clear();
    for (const w of waiters) w.resolve();
  }
}

class MemoryOutput implements JobOutputStore {
  constructor(private readonly state: MemoryState) {}

  /** One process: nothing to catch up with. */
  async resume(_jobId: string): Promise<void> { /* one writer */ }

  append(jobId: string, stream: OutputLine['stream'], data: string, at?: number): { seq: number; ts: number } {
    let lines = this.state.output.get(jobId);
    if (!lines) this.state.output.set(jobId, (lines = []));
    const seq = (lines.at(-1)?.seq ?? 0) + 1;
    const ts = at ?? Date.now();
    lines.push({ seq, stream, data, ts });
    return { seq, ts };
  }

  async read(jobId: string, opts: { afterSeq?: number; limitBytes?: number } = {}): Promise<OutputLine[]> {
    return pick((this.state.output.get(jobId) ?? []).map((l) => ({ ...l })), opts);
  }

  async end(): Promise<void> { /* nothing buffered */ }
  async remove(jobId: string): Promise<void> { this.state.output.delete(jobId); }
  async close(): Promise<void> { /* nothing to release */ }
}

export class MemoryBackend implements StateBackend {
  readonly kind = 'memory' as const;
  private readonly opened = new Set<{ close(): Promise<void> }>();

  constructor(readonly state: MemoryState = new MemoryState(), private readonly log: Logger = silentLogger()) {}

  async openKeyed<T>(name: string, opts: { accept: (key: string, value: unknown) => value is T }): Promise<KeyedStore<T>> {
    const s = new MemoryKeyed<T>(this.state.bucket(name), opts.accept, this.state, this.log.child({ store: name }));
    this.opened.add(s);
    return s;
  }

  async openOutput(): Promise<JobOutputStore> {
    return new MemoryOutput(this.state);
  }

  async close(): Promise<void> {
    const all = [...this.opened];
    this.opened.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}
