// Writes that missed their deadline (NATS unreachable, no quorum) wait here
// and are tried again every few seconds until they land, conflict, or are
// superseded (guarantee 3 of hub/store/types.ts). One queue and one timer per
// store, a bounded number of attempts at a time: when NATS comes back after
// an outage, 10,000 stalled writes must not become 10,000 requests at once.
import type { Logger } from '../../common/platform/log.js';

/** 'done': landed, conflicted or superseded (forget it); 'again': still failing. */
export type RetryAttempt = () => Promise<'done' | 'again'>;

export interface RetryQueueOptions {
  everyMs: number;
  /** Attempts in flight at once. */
  concurrency: number;
  log: Logger;
}

export class RetryQueue {
  private readonly items = new Map<string, RetryAttempt>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly o: RetryQueueOptions) {}

  get size(): number { return this.items.size; }

  /** Retry ATTEMPT under ID; a newer attempt for the same id replaces the older one. */
  add(id: string, attempt: RetryAttempt): void {
    if (this.closed) return;
    this.items.delete(id); // re-insert at the end: oldest first
    this.items.set(id, attempt);
    this.schedule();
  }

  /** Stop retrying; resolves once the round in progress (if any) has finished. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    if (this.items.size > 0) this.o.log.warn({ writes: this.items.size }, 'closing with writes NATS never acknowledged; they are lost');
    this.items.clear();
  }

  private schedule(): void {
    if (this.timer || this.running || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.round().finally(() => {
        this.running = null;
        if (this.items.size > 0) this.schedule();
      });
    }, this.o.everyMs);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    const batch = [...this.items];
    let next = 0;
    // One write still failing means NATS still does not answer: end the round
    // there rather than spend writeTimeoutMs on every queued write in turn.
    let stillFailing = false;
    const worker = async (): Promise<void> => {
      while (next < batch.length && !this.closed && !stillFailing) {
        const [id, attempt] = batch[next++]!;
        let verdict: 'done' | 'again' = 'again';
        try { verdict = await attempt(); } catch (err) {
          this.o.log.error({ id, err: (err as Error).message }, 'retrying a write failed unexpectedly');
        }
        // Only forget it if no newer attempt replaced it meanwhile.
        if (verdict === 'done' && this.items.get(id) === attempt) this.items.delete(id);
        if (verdict === 'again') stillFailing = true;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, batch.length) }, worker));
  }
}
