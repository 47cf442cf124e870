// Newline-delimited JSON framing with a hard size limit. The decoder is a
// plain class (no streams) so the hub can run one per connection cheaply:
// it keeps only the bytes of an unfinished line, and refuses a line longer
// than maxLineBytes before buffering it all, so a peer cannot make the hub
// hold megabytes by never sending "\n".
//
// The unfinished line is copied into one buffer that grows by doubling (at
// most maxLineBytes), not kept as a list of the chunks it came in: a peer
// sending one byte per SSH packet made the list 60,000 Buffer objects for a
// 60 KiB line, ~7 MB of heap (found by test/unit/protocol-fuzz.test.ts).
import { BentoError } from './errors.js';

export const MAX_LINE_BYTES = 64 * 1024;
/** First size of the unfinished-line buffer. */
const MIN_PENDING = 256;

export class LineDecoder {
  private pending: Buffer | null = null;
  private pendingBytes = 0;
  private failed = false;

  constructor(
    /** Each line's value, and the line's size in bytes (for callers that count what they hold). */
    private readonly onValue: (value: unknown, bytes: number) => void,
    private readonly onError: (err: BentoError) => void,
    private readonly maxLineBytes = MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    if (this.failed) return;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      const part = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.pendingBytes + part.length > this.maxLineBytes) return this.fail(this.pendingBytes + part.length);
      let line: Buffer = part;
      if (this.pendingBytes > 0) {
        this.append(part);
        line = this.pending!.subarray(0, this.pendingBytes);
        // Released after each line: an idle connection holds no buffer.
        this.pending = null;
        this.pendingBytes = 0;
      }
      if (!this.emit(line)) return;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.pendingBytes + rest.length > this.maxLineBytes) return this.fail(this.pendingBytes + rest.length);
      // Copied: the caller may reuse its buffer.
      this.append(rest);
    }
  }

  private append(bytes: Buffer): void {
    const need = this.pendingBytes + bytes.length;
    if (!this.pending || this.pending.length < need) {
      // Twice what is needed: a line spanning two packets (a 32 KiB output line) costs one buffer, not two.
      const size = Math.min(this.maxLineBytes, Math.max(2 * need, MIN_PENDING, 2 * (this.pending?.length ?? 0)));
      const grown = Buffer.allocUnsafe(size);
      if (this.pending) this.pending.copy(grown, 0, 0, this.pendingBytes);
      this.pending = grown;
    }
    bytes.copy(this.pending, this.pendingBytes);
    this.pendingBytes = need;
  }

  private emit(line: Buffer): boolean {
    if (line.length === 0 || (line.length === 1 && line[0] === 0x0d)) return true; // blank lines are keepalive-safe
    let value: unknown;
    try {
      value = JSON.parse(line.toString('utf8'));
    } catch {
      this.failed = true;
      this.onError(new BentoError('PROTOCOL_MALFORMED', `line is not valid JSON (${line.length} bytes)`));
      return false;
    }
    this.onValue(value, line.length);
    return !this.failed;
  }

  private fail(size: number): void {
    this.failed = true;
    this.pending = null;
    this.pendingBytes = 0;
    this.onError(new BentoError('PROTOCOL_OVERSIZED', `line exceeds ${this.maxLineBytes} bytes (at least ${size})`));
  }

  /** Bytes of an unfinished line held right now (never more than maxLineBytes). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Stop delivering values (after the owner decided to close). */
  stop(): void {
    this.failed = true;
  }
}

export function encodeLine(msg: object): string {
  return `${JSON.stringify(msg)}\n`;
}
