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

interface Entry<T> { at: number; answer: Promise<T> }

export class RoutedAnswers<T> {
  /** Insertion order is age order (one ttl for all): expiry and eviction take from the front. */
  private readonly entries = new Map<string, Entry<T>>();
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
    this.entries.delete(key);
    while (this.entries.size >= this.o.max) this.entries.delete(this.entries.keys().next().value as string);
    const entry: Entry<T> = { at: this.now(), answer };
    this.entries.set(key, entry);
    const drop = (): void => { if (this.entries.get(key) === entry) this.entries.delete(key); };
    answer.then((v) => { if (!keep(v)) drop(); }, drop);
  }

  private expire(): void {
    const oldest = this.now() - this.o.ttlMs;
    for (const [key, e] of this.entries) {
      if (e.at > oldest) break;
      this.entries.delete(key);
    }
  }
}
