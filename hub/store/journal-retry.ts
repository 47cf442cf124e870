// A journal write that failed (a full disk): the batch may be half on disk,
// so the journal rewrites the whole file next time (journal.ts mustCompact),
// and until a write gets through this keeps trying that rewrite every
// RETRY_MS, so state changed meanwhile is not lost once space is back. Part
// of the journal (journal.ts).
import type { Logger } from '../../common/platform/log.js';

const RETRY_MS = 2000;

export interface JournalRetryDeps {
  file: string;
  log: Logger;
  /** The file still waits for its full rewrite, and the journal is open. */
  rewriteDue(): boolean;
  /** Rewrite the file with the live records (journal.ts compactNow). */
  rewrite(): Promise<void>;
}

export class JournalRetry {
  /** A write failed and no write has succeeded since: the next success says so in the log. */
  private failing = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly d: JournalRetryDeps) {}

  /** A batch of RECORDS lines failed with ERR (the journal already marked the file for its rewrite). */
  failed(err: Error, records: number): void {
    this.failing = true;
    this.d.log.error({ file: this.d.file, err: err.message, records }, 'journal write failed; retrying every 2 s');
    this.schedule();
  }

  /**
   * Whichever write gets through first after a failure (this retry, or a
   * write of new state that compacts the file) logs it once: admins watch for
   * this line after freeing space.
   */
  recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.d.log.info({ file: this.d.file }, 'journal writable again; state is on disk');
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer || !this.d.rewriteDue()) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.d.rewriteDue()) return;
      this.d.rewrite().then(
        () => this.recovered(),
        () => undefined, // drain() logged it and scheduled the next try
      );
    }, RETRY_MS);
    this.timer.unref();
  }
}
