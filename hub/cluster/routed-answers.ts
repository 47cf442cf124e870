// The holding hub's memory of the routed triggers it answered (routing.ts
// serve): request id -> answer, for a short time. The asking hub sends a
// trigger again with the same id when the first request was not answered in
// time (this hub was slow: a store write waiting for a leader election, a
// paused process); the repeat must get the first one's job, not start a
// second one. A repeat that arrives while the first is still being handled
// gets the same answer when it comes (the entry holds the promise).
//
// Bounded twice, since other hubs choose the ids (a busy or broken hub must
// not grow it without limit): an entry lives ttlMs, and past `max` entries
// the oldest goes first. One lost early only loses this shortcut: the repeat
// carries the job id the asking hub chose, and the scheduler answers a job
// that has it already (scheduler.ts triggerNow) as long as its record is here.
export interface RoutedAnswersOptions {
  /** How long an answer is kept (from when its request arrived). */
  ttlMs: number;
  /** At most this many kept; the oldest goes first. */
  max: number;
  /** Monotonic milliseconds (tests set it). */
  now?: () => number;
}

interface Entry<T> { key: string; at: number; answer: Promise<T> }

export class RoutedAnswers<T> {
  private readonly entries = new Map<string, Entry<T>>();
  /**
   * Entries in arrival order (one ttl for all: also expiry order), from
   * `head` on; an entry no longer in the map (replaced, or a refusal) is
   * skipped when reached. Not the Map's own order: V8 iterates a Map from
   * its first slot, deleted ones included, so taking its oldest key after
   * many deletions cost ~17 µs (100,000 puts at the cap: 1.7 s).
   */
  private order: Array<Entry<T>> = [];
  private head = 0;
  private readonly now: () => number;

  constructor(private readonly o: RoutedAnswersOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  get size(): number {
    this.expire();
    return this.entries.size;
  }

  /** The answer kept for KEY (settled or still coming), if any. */
  get(key: string): Promise<T> | undefined {
    this.expire();
    return this.entries.get(key)?.answer;
  }

  /**
   * Keep ANSWER for KEY. Once settled it stays only if KEEP says so (a
   * refusal started nothing, so a repeat may try again) and it did not fail.
   */
  put(key: string, answer: Promise<T>, keep: (v: T) => boolean): void {
    this.expire();
    // At most max kept, and at most 2 * max queued (refusals leave their place in the queue behind).
    while (this.entries.size >= this.o.max || this.order.length - this.head >= 2 * this.o.max) this.shift();
    const entry: Entry<T> = { key, at: this.now(), answer };
    this.entries.set(key, entry);
    this.order.push(entry);
    const drop = (): void => { if (this.entries.get(key) === entry) this.entries.delete(key); };
    answer.then((v) => { if (!keep(v)) drop(); }, drop);
  }

  private expire(): void {
    const oldest = this.now() - this.o.ttlMs;
    while (this.head < this.order.length && this.order[this.head]!.at <= oldest) this.shift();
  }

  /** The oldest queued entry goes (from the map too, unless its key was kept again since). */
  private shift(): void {
    const e = this.order[this.head++]!;
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}
