// An append-only file for what a process the soak (or a test) starts prints,
// kept across its restarts, with a marker line at each start, kill and exit,
// so a failure can be read afterwards from every process's point of view.
// Writes are synchronous: the process's output and the markers the caller
// writes between two chunks (a kill, a soak cycle) stay in the order they
// happened, and nothing is left in a buffer when the caller exits.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';

export class LogFile {
  private fd: number | null;

  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openSync(file, 'a');
  }

  write(chunk: Buffer | string): void {
    if (this.fd === null) return;
    try {
      if (typeof chunk === 'string') writeSync(this.fd, chunk); else writeSync(this.fd, chunk);
    } catch {
      // A log that cannot be written (disk full, the dir removed) must not fail the run it describes.
    }
  }

  /** One marker line, "=== <ISO time> TEXT ===", greppable and sortable with the processes' own times. */
  mark(text: string): void {
    this.write(`=== ${new Date().toISOString()} ${text} ===\n`);
  }

  close(): void {
    if (this.fd === null) return;
    try { closeSync(this.fd); } catch { /* already closed */ }
    this.fd = null;
  }
}
