// The text a follower (follower.ts) holds while its reader does not keep up,
// kept apart from the follower's flow control so the bookkeeping can be read
// on its own. A reader that fell behind a fan-out has tens of thousands of
// short lines waiting, and the follower may skip one on every push: so
// taking from the front moves an index (the array is compacted now and then),
// and skipping looks for the oldest skippable line from where the last search
// stopped, not from the front. A skipped line becomes its group's one gap
// notice where it was, and later skipped lines of that group join it while
// it waits: the reader gets one notice per gap, not one per line.
// Which text to skip, and when to cut instead, is the follower's decision.

/** Text waiting for the reader; group null: never skipped. */
export interface Text { text: string; group: string | null; bytes: number }
interface Gap { gap: string; lines: number; bytes: number }
/** null: a line that was skipped after it was queued (its gap notice is earlier in the queue), or one already taken. */
type Item = Text | Gap | null;

/** What turns a gap into the reader's notice (the follower's options: called as their method). */
export interface GapNotices {
  skipped(group: string, lines: number, bytes: number): string;
}

export class FollowerQueue {
  private queue: Item[] = [];
  private head = 0;
  private queued = 0;
  private kept = 0;
  /** The gap notice still waiting in the queue, per group: more skipped lines join it. */
  private readonly gaps = new Map<string, Gap>();
  /** Queue items before this index are no skippable lines (gaps, skipped places, kept text): where eviction looks first. */
  private evictFrom = 0;
  /**
   * Skipped lines' places (null) still in the queue past the head. A reader
   * that never reads lets them pile up, ~10 bytes each while its text stays
   * bounded (found by review: 5,000,000 skipped lines held 50.7 MiB behind a
   * 64 KiB follower), so they are squeezed out once they are most of it.
   */
  private holes = 0;

  /** Nothing waits. */
  get empty(): boolean {
    return this.head === this.queue.length;
  }

  /** Bytes of skippable text waiting. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Places held past the head (text, gap notices, skipped places): bounded by the text a follower keeps. */
  get places(): number {
    return this.queue.length - this.head;
  }

  /** Bytes of text that is never skipped waiting. */
  get keptBytes(): number {
    return this.kept;
  }

  /** Queue `item`; `size` is its text's size in bytes (the caller has it already). */
  add(item: Text, size: number): void {
    if (item.group !== null) this.queued += size;
    else this.kept += size;
    this.queue.push(item);
  }

  /** Skip the oldest waiting line: its place becomes (or joins) its group's gap notice. Its counted bytes, or null when none waits. */
  skipOldest(): number | null {
    let i = Math.max(this.evictFrom, this.head);
    while (i < this.queue.length) {
      const it = this.queue[i];
      if (it && 'text' in it && it.group !== null) break;
      i++;
    }
    this.evictFrom = i;
    if (i >= this.queue.length) return null;
    const line = this.queue[i] as Text;
    const group = line.group!;
    this.queued -= Buffer.byteLength(line.text);
    let gap = this.gaps.get(group);
    if (gap) {
      this.queue[i] = null;
      if (++this.holes > 1024 && this.holes * 2 > this.queue.length - this.head) this.squeeze();
    } else {
      gap = { gap: group, lines: 0, bytes: 0 };
      this.gaps.set(group, gap);
      this.queue[i] = gap;
    }
    gap.lines++;
    gap.bytes += line.bytes;
    return line.bytes;
  }

  /** Take waiting text from the front until about `maxChars` characters (or nothing) is left, gaps as their notices. */
  take(maxChars: number, notices: GapNotices): string {
    let piece = '';
    while (this.head < this.queue.length && piece.length < maxChars) {
      const item = this.queue[this.head];
      this.queue[this.head++] = null;
      if (!item) { this.holes--; continue; } // past the head, a null is a skipped line's place
      if ('gap' in item) {
        this.gaps.delete(item.gap);
        piece += notices.skipped(item.gap, item.lines, item.bytes);
      } else {
        const size = Buffer.byteLength(item.text);
        if (item.group !== null) this.queued -= size;
        else this.kept -= size;
        piece += item.text;
      }
    }
    return piece;
  }

  /** Let go of taken places: all of them once nothing waits, else when they are most of the array. */
  compact(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.evictFrom = 0;
      this.holes = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.evictFrom = Math.max(0, this.evictFrom - this.head);
      this.head = 0;
    }
  }

  /** Drop the skipped lines' places, keeping the order of everything else (O(n), after at least n/2 skips). */
  private squeeze(): void {
    const kept: Item[] = [];
    let evictFrom = 0;
    for (let j = this.head; j < this.queue.length; j++) {
      const it = this.queue[j];
      if (it === null) continue;
      if (j < this.evictFrom) evictFrom++;
      kept.push(it);
    }
    this.queue = kept;
    this.head = 0;
    this.evictFrom = evictFrom;
    this.holes = 0;
  }

  /** Drop everything waiting. */
  clear(): void {
    this.queue = [];
    this.head = 0;
    this.evictFrom = 0;
    this.holes = 0;
    this.queued = 0;
    this.kept = 0;
    this.gaps.clear();
  }
}
