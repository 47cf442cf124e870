// One bounded queue between something that produces events at its own pace
// (a job printing 500 MB, a fan-out answering 10,000 hosts) and a reader that
// may not keep up (`bento-hub trigger web1 | less` left idle, a slow
// terminal, a background browser tab). Every follower goes through it: the
// admin socket, the dashboard's event streams and the agent's local page
// (issue 13 part 3). Without it, write() keeps whatever the reader does not
// take in the socket's buffer, and the producer's memory grows with the job.
//
// The rules:
//   - Text goes straight to the output while it accepts more (write() true);
//     once it does not, text waits here until 'drain'.
//   - Skippable text (a job's output lines: push(text, group)) waits up to
//     maxQueuedBytes. Past that the oldest waiting lines make room for the
//     new one: they are skipped and counted per group, and where they were
//     the reader later gets one notice saying how many lines and bytes, and
//     where the full log is (skipped()). The newest lines are kept because
//     they matter most: a failed build says why at its end, and a reader who
//     comes back wants to see where the job is now.
//   - Other text (starts, ends, summaries: few, and needed) is never skipped;
//     past maxKeptBytes of it the reader is too far behind to help: the
//     stream is cut, with one last notice (cut()).
// So a stalled reader costs at most maxQueuedBytes + maxKeptBytes plus the
// output's own high-water mark and one piece of waiting text (pump()),
// whatever it follows. What waits, and how skipped lines become notices, is
// follower-queue.ts.
import { FollowerQueue } from './follower-queue.js';

/** Where a follower's text goes: a socket or an HTTP response. */
export interface FollowerOut {
  write(chunk: string): boolean;
  end(): unknown;
  end(chunk: string): unknown;
  once(event: 'drain' | 'close', fn: () => void): unknown;
  readonly writableNeedDrain: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  destroy?(): void;
}

/**
 * Waiting text is written in pieces of about this many characters: a reader
 * that fell behind a fan-out (thousands of short lines) takes them in a few
 * writes, not a write (a system call) per line.
 */
const PUMP_PIECE_CHARS = 64 * 1024;
/** A cut stream's last notice gets this long to leave before the connection is dropped. */
const CUT_GRACE_MS = 30_000;

/** Counts shared by all followers of a process (metrics). */
export class FollowerStats {
  /** Lines (skippable texts) left out because their reader fell behind. */
  skippedLines = 0;
  skippedBytes = 0;
  /** Streams ended because their reader fell too far behind. */
  cut = 0;
  /** Followers open now, and those waiting for their reader. */
  open = 0;
  behind = 0;
}

export interface FollowerOptions {
  out: FollowerOut;
  /** Skippable text held while the reader does not keep up; more is skipped. */
  maxQueuedBytes: number;
  /** Other text held while the reader does not keep up; more cuts the stream. */
  maxKeptBytes: number;
  /** The text standing in for skipped lines of one group, sent where they were. */
  skipped(group: string, lines: number, bytes: number): string;
  /** The last text before a cut. */
  cut(heldBytes: number): string;
  stats?: FollowerStats;
}

export class Follower {
  private readonly held = new FollowerQueue();
  private waiting = false;
  private ending: string | null = null;
  private done = false;
  private wasBehind = false;
  private readonly closers: Array<(why: 'cut' | 'closed') => void> = [];

  constructor(private readonly o: FollowerOptions) {
    if (o.stats) o.stats.open++;
    o.out.once('close', () => this.finish('closed'));
  }

  /** False once the stream ended (cut, ended, or the reader left). */
  get open(): boolean {
    return !this.done && this.ending === null;
  }

  /** Bytes waiting here for the reader. */
  get heldBytes(): number {
    return this.held.queuedBytes + this.held.keptBytes;
  }

  /** Called once when the stream ends: 'cut' (reader too far behind) or 'closed' (ended, or the reader left). */
  onClose(fn: (why: 'cut' | 'closed') => void): void {
    if (this.done) fn('closed');
    else this.closers.push(fn);
  }

  /**
   * Send text; with a group it may be skipped when the reader falls behind;
   * `bytes` is what it counts in a skip notice (default: the text's size; a
   * caller may count only a line's data).
   */
  push(text: string, group?: string, bytes?: number): void {
    if (!this.open) return;
    const held = this.held;
    const behind = !held.empty || this.o.out.writableNeedDrain;
    if (!behind) {
      if (!this.o.out.write(text)) this.wait();
      return;
    }
    const size = Buffer.byteLength(text);
    // One item always fits, whatever its size (a fleet page's first render of 10,000 rows).
    if (group !== undefined) {
      while (held.queuedBytes > 0 && held.queuedBytes + size > this.o.maxQueuedBytes && this.skipOldest());
    } else if (held.keptBytes > 0 && held.keptBytes + size > this.o.maxKeptBytes) {
      return this.cutNow();
    }
    held.add({ text, group: group ?? null, bytes: bytes ?? size }, size);
    this.noteBehind();
    this.wait();
  }

  /** Resolves once everything pushed so far has been handed to the output (for paging stored output). */
  async flushed(): Promise<void> {
    while (this.open && (!this.held.empty || this.o.out.writableNeedDrain)) {
      await new Promise<void>((resolve) => {
        let settled = false;
        const go = (): void => { if (!settled) { settled = true; resolve(); } };
        // As in wait(): a drain may have come already; then look again on the next turn.
        if (this.o.out.writableNeedDrain) this.o.out.once('drain', () => setImmediate(go));
        else setImmediate(go);
        this.onClose(go);
      });
    }
  }

  /** End the stream once everything queued is written (with `last` as its final text). */
  end(last = ''): void {
    if (!this.open) return;
    this.ending = last;
    if (this.held.empty && !this.o.out.writableNeedDrain) this.close();
    else this.wait();
  }

  /** Skip the oldest waiting line (it becomes part of a gap notice). False when none waits. */
  private skipOldest(): boolean {
    const bytes = this.held.skipOldest();
    if (bytes === null) return false;
    if (this.o.stats) { this.o.stats.skippedLines++; this.o.stats.skippedBytes += bytes; }
    return true;
  }

  private wait(): void {
    if (this.waiting || this.done) return;
    this.waiting = true;
    const go = (): void => { this.waiting = false; this.pump(); };
    // 'drain' comes only after a write the output refused and only once. When
    // the output is not full now, it may have come already (before this
    // listener existed), and waiting for the next one would hang the stream
    // with its last events unsent. So go on at once instead.
    if (this.o.out.writableNeedDrain) this.o.out.once('drain', go);
    else setImmediate(go);
  }

  /**
   * Write what waits until the output is full again. No cork()/uncork()
   * around it: on an http response that broke 'drain' both ways (Node 24
   * emitted it synchronously inside uncork(), before anyone listened; Node 22
   * left writableNeedDrain true with nothing left to drain and no 'drain' to
   * come), and an SSE stream hung with its end unsent (follower.test).
   */
  private pump(): void {
    if (this.done) return;
    const out = this.o.out;
    const held = this.held;
    while (!held.empty && !out.writableNeedDrain) {
      const piece = held.take(PUMP_PIECE_CHARS, this.o);
      if (piece) out.write(piece);
    }
    held.compact();
    if (held.empty) {
      this.noteCaughtUp();
      if (this.ending !== null && !out.writableNeedDrain) return this.close();
    }
    if (!held.empty || this.ending !== null) this.wait();
  }

  private cutNow(): void {
    const held = this.heldBytes;
    this.clear();
    if (this.o.stats) this.o.stats.cut++;
    const out = this.o.out;
    if (!out.destroyed && !out.writableEnded) out.end(this.o.cut(held));
    // A reader that stalled may never take the notice: its connection goes after a grace.
    if (out.destroy) setTimeout(() => { if (!out.destroyed) out.destroy!(); }, CUT_GRACE_MS).unref();
    this.finish('cut');
  }

  private close(): void {
    const out = this.o.out;
    const last = this.ending ?? '';
    if (!out.destroyed && !out.writableEnded) {
      if (last) out.end(last);
      else out.end();
    }
    this.finish('closed');
  }

  private clear(): void {
    this.held.clear();
    this.noteCaughtUp();
  }

  private finish(why: 'cut' | 'closed'): void {
    if (this.done) return;
    this.done = true;
    this.clear();
    if (this.o.stats) this.o.stats.open--;
    for (const fn of this.closers.splice(0)) fn(why);
  }

  private noteBehind(): void {
    if (this.wasBehind) return;
    this.wasBehind = true;
    if (this.o.stats) this.o.stats.behind++;
  }

  private noteCaughtUp(): void {
    if (!this.wasBehind) return;
    this.wasBehind = false;
    if (this.o.stats) this.o.stats.behind--;
  }
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
