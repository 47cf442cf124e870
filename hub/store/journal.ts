// A durable key -> record map kept as one append-only NDJSON file, with group
// commit: every change made while a flush is in progress (or in the same
// event-loop turn) goes to disk in ONE write + ONE fdatasync, and every caller
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
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from '../../common/platform/atomic.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';

const RETRY_MS = 2000;

type Entry = { k: string; v: unknown } | { k: string; d: 1 };

export interface JournalOptions<T> {
  file: string;
  log: Logger;
  /** Replayed values are checked with this; anything else is dropped with a warning. */
  accept: (key: string, value: unknown) => value is T;
  /** Compact once the file holds more than `factor * live + slack` lines. */
  compactFactor?: number;
  compactSlack?: number;
}

interface Waiter { resolve: () => void; reject: (err: Error) => void }

export class KeyedJournal<T> {
  readonly map = new Map<string, T>();
  /** Batches written (each one write + one fdatasync) and full rewrites: for tests and the bench. */
  readonly stats = { commits: 0, compactions: 0 };
  private fh: FileHandle | null = null;
  private lines = 0;
  private queue: string[] = [];
  private waiters: Waiter[] = [];
  private draining = false;
  /** The file's tail may be torn (replay or a failed write): rewrite before appending. */
  private mustCompact = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => undefined;
  private retry: NodeJS.Timeout | null = null;

  private constructor(private readonly o: JournalOptions<T>) {}

  static async open<T>(o: JournalOptions<T>): Promise<KeyedJournal<T>> {
    const j = new KeyedJournal<T>(o);
    const { entries, bad } = await readEntries(o.file);
    replay(entries, o.accept, j.map, (key) => o.log.warn({ file: o.file, key }, 'dropping an invalid journal record'));
    j.lines = entries.length + bad;
    if (bad > 0) {
      o.log.warn({ file: o.file, lines: bad }, 'skipped unreadable journal lines (a torn write from a crash?); rewriting the journal');
      j.mustCompact = true;
    }
    j.fh = await open(o.file, 'a', 0o600);
    return j;
  }

  get(key: string): T | undefined { return this.map.get(key); }

  /** Change a record now (readers see it at once); the promise resolves once it is durable. */
  set(key: string, value: T): Promise<void> {
    this.map.set(key, value);
    return this.enqueue(JSON.stringify({ k: key, v: value }));
  }

  delete(key: string): Promise<void> {
    if (!this.map.delete(key)) return Promise.resolve();
    return this.enqueue(JSON.stringify({ k: key, d: 1 }));
  }

  /**
   * Move records kept one file per record (what the hub wrote before the
   * journal) into it: files whose name `keyOf` maps to a key are read, checked
   * with `accept`, added unless the journal already has that key (it is
   * newer), written with one rewrite, then deleted. Returns how many files.
   */
  async importFiles(dir: string, keyOf: (file: string) => string | null): Promise<number> {
    const files = (await readdir(dir)).map((f) => [f, keyOf(f)] as const).filter((e): e is readonly [string, string] => e[1] !== null);
    if (files.length === 0) return 0;
    for (const [f, key] of files) {
      if (this.map.has(key)) continue;
      try {
        const v = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as unknown;
        if (this.o.accept(key, v)) this.map.set(key, v);
      } catch (err) {
        this.o.log.warn({ file: f, err: (err as Error).message }, 'skipping an unreadable record file');
      }
    }
    await this.compactNow();
    await Promise.all(files.map(([f]) => unlink(path.join(dir, f)).catch(() => undefined)));
    this.o.log.info({ file: this.o.file, records: files.length }, 'moved one-file-per-record state into the journal');
    return files.length;
  }

  /** Rewrite the file with only the live records (also runs by itself as the file grows). */
  compactNow(): Promise<void> {
    this.mustCompact = true;
    return this.enqueue(null);
  }

  /** Resolves when everything enqueued so far is on disk (or failed). */
  settled(): Promise<void> { return this.draining ? this.idle : Promise.resolve(); }

  async close(): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    await this.settled();
    await this.fh?.close();
    this.fh = null;
  }

  private enqueue(line: string | null): Promise<void> {
    if (!this.fh) return Promise.reject(new Error(`journal ${this.o.file} is closed`));
    return new Promise<void>((resolve, reject) => {
      if (line !== null) this.queue.push(line);
      this.waiters.push({ resolve, reject });
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
      const lines = this.queue;
      const waiters = this.waiters;
      this.queue = [];
      this.waiters = [];
      try {
        if (this.mustCompact || this.lines + lines.length > (this.o.compactFactor ?? 2) * this.map.size + (this.o.compactSlack ?? 1024)) {
          await this.compact(); // the live map already holds every queued change
        } else if (lines.length > 0) {
          await this.fh!.writeFile(`${lines.join('\n')}\n`);
          await this.fh!.datasync();
          this.lines += lines.length;
          this.stats.commits += 1;
        }
        for (const w of waiters) w.resolve();
      } catch (err) {
        // The batch may be half on disk: rewrite the whole file next time.
        this.mustCompact = true;
        this.o.log.error({ file: this.o.file, err: (err as Error).message, records: lines.length }, 'journal write failed; retrying every 2 s');
        const e = new BentoError('STATE_WRITE_FAILED', `cannot write ${this.o.file}: ${(err as Error).message}`, { cause: err });
        for (const w of waiters) w.reject(e);
        this.scheduleRetry();
      }
    }
    this.draining = false;
    this.markIdle();
  }

  /**
   * After a failed write (a full disk), keep trying to get the live records
   * onto disk, so state changed meanwhile is not lost once space is back.
   */
  private scheduleRetry(): void {
    if (this.retry || !this.fh) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      if (!this.mustCompact || !this.fh) return;
      this.compactNow().then(
        () => this.o.log.info({ file: this.o.file }, 'journal writable again; state is on disk'),
        () => undefined, // drain() logged it and scheduled the next try
      );
    }, RETRY_MS);
    this.retry.unref();
  }

  private async compact(): Promise<void> {
    const out: string[] = [];
    for (const [k, v] of this.map) out.push(JSON.stringify({ k, v }));
    await writeFileAtomic(this.o.file, out.length ? `${out.join('\n')}\n` : '', { mode: 0o600 });
    const old = this.fh;
    this.fh = await open(this.o.file, 'a', 0o600);
    await old?.close();
    this.lines = out.length;
    this.mustCompact = false;
    this.stats.compactions += 1;
  }
}

/** Read a journal without opening it for writing (CLI commands, tests): the live records that `accept` takes, as the hub would load them. */
export async function readJournal<T>(file: string, accept: (key: string, value: unknown) => value is T): Promise<Map<string, T>> {
  const map = new Map<string, T>();
  replay((await readEntries(file)).entries, accept, map);
  return map;
}

/** Apply ENTRIES in order to MAP: sets that `accept` takes, deletes; a refused value goes to `dropped`. */
function replay<T>(entries: Entry[], accept: (key: string, value: unknown) => value is T, map: Map<string, T>, dropped?: (key: string) => void): void {
  for (const e of entries) {
    if ('d' in e) map.delete(e.k);
    else if (accept(e.k, e.v)) map.set(e.k, e.v);
    else dropped?.(e.k);
  }
}

async function readEntries(file: string): Promise<{ entries: Entry[]; bad: number }> {
  const entries: Entry[] = [];
  let bad = 0;
  const input = createReadStream(file, { encoding: 'utf8' });
  const opened = await new Promise<boolean>((resolve, reject) => {
    input.once('open', () => resolve(true));
    input.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? resolve(false) : reject(err)));
  });
  if (!opened) return { entries, bad };
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (line === '') continue;
    const e = parseEntry(line);
    if (e) entries.push(e);
    else bad += 1;
  }
  return { entries, bad };
}

function parseEntry(line: string): Entry | null {
  try {
    const e = JSON.parse(line) as Record<string, unknown>;
    if (typeof e['k'] !== 'string') return null;
    if (e['d'] === 1) return { k: e['k'], d: 1 };
    return 'v' in e ? { k: e['k'], v: e['v'] } : null;
  } catch {
    return null;
  }
}
