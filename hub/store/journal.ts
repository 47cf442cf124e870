// The file implementation of KeyedStore (types.ts): a durable key -> record
// map kept as one append-only NDJSON file (journal-format.ts), with group
// commit: every change made while a flush is in progress (or in the same
// event-loop turn) goes to disk in ONE write (O_DSYNC: on disk when it returns), and every caller
// waiting on those changes is released together.
//
// Why not one file per record (what the hub did first): a durable atomic
// replace costs two fsyncs and five other file operations through libuv's
// 4-thread pool, per change. A fan-out to 10,000 hosts made 40,000 of them
// (69 s), a reconnect storm one per hello, and a hub start read 20,000 files
// one by one. Here 10,000 changes cost a handful of fdatasyncs, and a start
// reads one file. See docs/performance.md.
//
// Crash safety: a record is acknowledged (its promise resolves) only after the
// fdatasync that covers it. A crash can leave a torn last line; replay skips
// unparseable lines and the file is rewritten (compacted) before new appends,
// so a torn line never glues onto the next one. Compaction writes the live
// records to a temporary file, fsyncs it and renames it over the journal
// (common/platform/atomic.ts): a crash during it leaves the old journal.
//
// Compare-and-swap is checked against the in-memory view. That is sound
// because exactly one hub process owns the files (its admin socket is the
// fleet's lock: a second `serve` on the same fleet refuses to start).
import { constants, open, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from '../../common/platform/atomic.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { KeyedStore, StoreChange, Versioned, WriteOptions } from './types.js';
import { encodeDelete, encodeHeader, encodeSet, eventualLines, readEntries, replay, type EventualLine } from './journal-format.js';
import { JournalRetry } from './journal-retry.js';

/**
 * Appends with O_DSYNC: each write returns once it is on disk, as write +
 * fdatasync did, but in one call through libuv's thread pool instead of two
 * (each call wakes a pool thread and then the event loop; per commit that was
 * a third of the hub's CPU on the trigger path, docs/performance.md).
 */
const APPEND_DSYNC = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC;
/** How long a change nobody waits for (WriteOptions.eventually) may wait for a commit to join. */
export const EVENTUAL_MS = 50;

export interface JournalOptions<T> {
  file: string;
  log: Logger;
  /** Replayed values are checked with this; anything else is dropped with a warning. */
  accept: (key: string, value: unknown) => value is T;
  /** Compact once the file holds more than `factor * live + slack` lines. */
  compactFactor?: number;
  compactSlack?: number;
  /** Only read (offline tools, tests): writes are refused and the file is never touched. */
  readOnly?: boolean;
}

/** A caller waiting for a commit; `result`: what its promise resolves with (a set's revision). */
interface Waiter { resolve: (result: number | undefined) => void; reject: (err: Error) => void; result: number | undefined }

export class KeyedJournal<T> implements KeyedStore<T> {
  /** Batches are written one after another, and a failed one is followed by a full rewrite (types.ts KeyedStore.ordered). */
  readonly ordered = true;
  private readonly view = new Map<string, Versioned<T>>();
  private readonly watchers = new Set<(c: StoreChange<T>) => void>();
  /** Batches written (each one write + one fdatasync) and full rewrites. */
  private readonly counts = { commits: 0, compactions: 0 };
  private rev = 0;
  private fh: FileHandle | null = null;
  private lines = 0;
  private queue: string[] = [];
  private waiters: Waiter[] = [];
  /**
   * Changes nobody waits for (WriteOptions.eventually), the newest per key:
   * they join the next commit (or start one after EVENTUAL_MS), and a later
   * change of the same key replaces the line, so a job's dispatched and
   * running records cost no commit of their own and often no line.
   */
  private eventual = new Map<string, EventualLine<T>>();
  private eventualWaiters: Waiter[] = [];
  private eventualTimer: NodeJS.Timeout | null = null;
  private draining = false;
  /** The file's tail may be torn (replay or a failed write): rewrite before appending. */
  private mustCompact = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => undefined;
  /** After a failed write: retries the rewrite until a write gets through (journal-retry.ts). */
  private readonly retry: JournalRetry;

  private constructor(private readonly o: JournalOptions<T>) {
    this.retry = new JournalRetry({
      file: o.file, log: o.log,
      rewriteDue: () => this.mustCompact && this.fh !== null,
      rewrite: () => this.compactNow(),
    });
  }

  static async open<T>(o: JournalOptions<T>): Promise<KeyedJournal<T>> {
    const j = new KeyedJournal<T>(o);
    const { entries, bad } = await readEntries(o.file);
    j.rev = replay(entries, o.accept, j.view, (key) => o.log.warn({ file: o.file, key }, 'dropping an invalid journal record'));
    if (o.readOnly) return j;
    j.lines = entries.length + bad;
    if (bad > 0) {
      o.log.warn({ file: o.file, lines: bad }, 'skipped unreadable journal lines (a torn write from a crash?); rewriting the journal');
      j.mustCompact = true;
    }
    j.fh = await open(o.file, APPEND_DSYNC, 0o600);
    return j;
  }

  get(key: string): T | undefined { return this.view.get(key)?.value; }
  entry(key: string): Versioned<T> | undefined { return this.view.get(key); }
  /** One process owns the file: its view is the store. */
  latest(key: string): Promise<Versioned<T> | undefined> { return Promise.resolve(this.view.get(key)); }
  has(key: string): boolean { return this.view.has(key); }
  keys(): IterableIterator<string> { return this.view.keys(); }
  *values(): IterableIterator<T> { for (const e of this.view.values()) yield e.value; }
  get size(): number { return this.view.size; }

  /** Batches written and full rewrites so far: for this file's own unit test and the bench, not part of KeyedStore. */
  stats(): { commits: number; compactions: number } { return { ...this.counts }; }

  /** Change a record now (readers see it at once); the promise resolves with its revision once it is durable. */
  set(key: string, value: T, opts: WriteOptions = {}): Promise<number> {
    const refused = this.refuse(key, opts);
    if (refused) return refused;
    const revision = ++this.rev;
    this.view.set(key, { value, revision });
    this.notify({ op: 'set', key, value, revision });
    // Eventually: encoded only if it is still the key's newest change at the commit (a job's
    // dispatched record is usually replaced by its running one, and that by its end, first).
    if (opts.eventually === true) return this.enqueue({ value, revision }, key, true, revision) as Promise<number>;
    return this.enqueue(encodeSet(key, value, revision), key, false, revision) as Promise<number>;
  }

  delete(key: string, opts: WriteOptions = {}): Promise<void> {
    const refused = this.refuse(key, opts);
    if (refused) return refused.then(() => undefined);
    if (!this.view.has(key)) return Promise.resolve();
    const revision = ++this.rev;
    this.view.delete(key);
    this.notify({ op: 'delete', key, revision });
    return this.enqueue(encodeDelete(key, revision), key, opts.eventually === true).then(() => undefined);
  }

  watch(fn: (change: StoreChange<T>) => void): () => void {
    this.watchers.add(fn);
    return () => { this.watchers.delete(fn); };
  }

  /**
   * A record from before the journal (journal-import.ts), added to the view
   * unless the journal already has KEY (its record is newer): not written
   * and not reported; the caller rewrites the file (compactNow) to keep it.
   * Returns whether it was added.
   */
  seed(key: string, value: T): boolean {
    if (this.view.has(key)) return false;
    this.view.set(key, { value, revision: ++this.rev });
    return true;
  }

  /** Rewrite the file with only the live records (also runs by itself as the file grows). */
  compactNow(): Promise<void> {
    this.mustCompact = true;
    return this.enqueue(null).then(() => undefined);
  }

  /** Resolves when everything enqueued so far is on disk (or failed). */
  settled(): Promise<void> {
    if (this.eventualWaiters.length > 0 && this.fh) return this.enqueue(null).then(() => undefined, () => undefined);
    return this.draining ? this.idle : Promise.resolve();
  }

  async close(): Promise<void> {
    this.retry.close();
    if (this.eventualTimer) clearTimeout(this.eventualTimer);
    this.eventualTimer = null;
    await this.settled();
    await this.fh?.close();
    this.fh = null;
  }

  private refuse(key: string, opts: WriteOptions): Promise<never> | null {
    if (!this.fh) return Promise.reject(new BentoError('INTERNAL', `journal ${this.o.file} is ${this.o.readOnly ? 'open read-only' : 'closed'}`));
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
        this.o.log.error({ file: this.o.file, key: change.key, err: (err as Error).message }, 'store watcher failed');
      }
    }
  }

  /**
   * LINE (a change of KEY) for the next commit; `eventually`: nobody waits for
   * it, so it starts no commit at once. Resolves with RESULT once durable.
   */
  private enqueue(line: EventualLine<T> | null, key?: string, eventually = false, result?: number): Promise<number | undefined> {
    if (!this.fh) return Promise.reject(new BentoError('INTERNAL', `journal ${this.o.file} is closed`));
    return new Promise<number | undefined>((resolve, reject) => {
      // The newest line of a key is the one replay keeps: an older eventual line of it is dropped.
      if (key !== undefined) this.eventual.delete(key);
      if (eventually && key !== undefined && line !== null) {
        this.eventual.set(key, line);
        this.eventualWaiters.push({ resolve, reject, result });
        if (!this.draining) this.armEventual();
        return;
      }
      if (line !== null) this.queue.push(typeof line === 'string' ? line : encodeSet(key!, line.value, line.revision));
      this.waiters.push({ resolve, reject, result });
      if (!this.draining) {
        this.draining = true;
        this.idle = new Promise<void>((r) => { this.markIdle = r; });
        // Let the rest of this turn's changes join the batch.
        setImmediate(() => { void this.drain(); });
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.waiters.length > 0) {
      // Eventual lines after the others: each is its key's newest (enqueue drops older ones), and replay keeps a key's last line.
      const lines = this.eventual.size > 0 ? [...this.queue, ...eventualLines(this.eventual)] : this.queue;
      const waiters = this.eventualWaiters.length > 0 ? [...this.waiters, ...this.eventualWaiters] : this.waiters;
      this.queue = [];
      this.waiters = [];
      this.eventual = new Map();
      this.eventualWaiters = [];
      if (this.eventualTimer) { clearTimeout(this.eventualTimer); this.eventualTimer = null; }
      try {
        if (this.mustCompact || this.lines + lines.length > (this.o.compactFactor ?? 2) * this.view.size + (this.o.compactSlack ?? 1024)) {
          await this.compact(); // the live view already holds every queued change
        } else if (lines.length > 0) {
          // O_DSYNC: the write returns once the data is on disk (write + fdatasync in one call).
          await this.fh!.writeFile(`${lines.join('\n')}\n`);
          this.lines += lines.length;
          this.counts.commits += 1;
        }
        for (const w of waiters) w.resolve(w.result);
        this.retry.recovered();
      } catch (err) {
        // The batch may be half on disk: rewrite the whole file next time.
        this.mustCompact = true;
        this.retry.failed(err as Error, lines.length);
        const e = new BentoError('STATE_WRITE_FAILED', `cannot write ${this.o.file}: ${(err as Error).message}`, { cause: err });
        for (const w of waiters) w.reject(e);
      }
    }
    this.draining = false;
    this.markIdle();
    // Eventual changes that came during the last commit wait for the next one, or the timer.
    if (this.eventualWaiters.length > 0) this.armEventual();
  }

  private armEventual(): void {
    if (this.eventualTimer) return;
    this.eventualTimer = setTimeout(() => {
      this.eventualTimer = null;
      if (this.fh && this.eventualWaiters.length > 0) this.enqueue(null).catch(() => undefined);
    }, EVENTUAL_MS);
    // Not unref'd: someone may be waiting for these promises, and the wait is short.
  }

  private async compact(): Promise<void> {
    const out: string[] = [encodeHeader(this.rev)];
    for (const [k, e] of this.view) out.push(encodeSet(k, e.value, e.revision));
    await writeFileAtomic(this.o.file, `${out.join('\n')}\n`, { mode: 0o600 });
    const old = this.fh;
    this.fh = await open(this.o.file, APPEND_DSYNC, 0o600);
    await old?.close();
    this.lines = out.length;
    this.mustCompact = false;
    this.counts.compactions += 1;
  }
}
