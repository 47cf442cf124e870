// Warn lines about what hostile or broken peers do (refused handshakes,
// throttled sessions, refused adoptions), rate-limited: a flood of 10,000
// connections must not become 10,000 log lines. Per kind of
// event, the first few in each window are logged as they happen; the rest
// are counted and reported in one summary line when the window ends.
//
// A source's first event of a kind in a window is logged too, up to a few
// more sources: otherwise one host's flood used up a kind's lines, and
// another host refused the same way went unnamed for the window (found by
// review). The lifetime count per kind feeds the hub's metrics.
import type { Logger } from './log.js';

interface Window { logged: number; suppressed: number; sources: Set<string>; named: Set<string>; msg: string }

/** Kinds counted by name; past this many (a caller bug: kinds are the code's own words) they count as "other". */
const MAX_KINDS = 100;

export class LogThrottle {
  private readonly windows = new Map<string, Window>();
  private readonly counts = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Logger,
    private readonly perWindow = 5,
    private readonly windowMs = 10_000,
  ) {}

  /** A warn line for `kind`, unless `kind` already used up this window's lines and its source was named in it. */
  warn(kind: string, fields: { source: string } & Record<string, unknown>, msg: string): void {
    const counted = this.counts.has(kind) || this.counts.size < MAX_KINDS ? kind : 'other';
    this.counts.set(counted, (this.counts.get(counted) ?? 0) + 1);
    let w = this.windows.get(kind);
    if (!w) {
      w = { logged: 0, suppressed: 0, sources: new Set(), named: new Set(), msg };
      this.windows.set(kind, w);
      this.arm();
    }
    const newSource = !w.named.has(fields.source) && w.named.size < this.perWindow * 4;
    if (w.logged < this.perWindow || newSource) {
      w.logged++;
      w.named.add(fields.source);
      this.log.warn(fields, msg);
    } else {
      w.suppressed++;
      // The set only says how many sources were involved; bounded all the same.
      if (w.sources.size < 10_000) w.sources.add(fields.source);
    }
  }

  /** Events per kind since the start (logged or not). */
  totals(): Array<[string, number]> {
    return [...this.counts];
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.windowMs);
    this.timer.unref();
  }

  /** End the window: one summary line per kind that had more than its share. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const [kind, w] of this.windows) {
      if (w.suppressed > 0) {
        this.log.warn({ kind, more: w.suppressed, sources: w.sources.size, windowS: this.windowMs / 1000 },
          `${w.msg}: ${w.suppressed} more in the last ${this.windowMs / 1000} s (not logged one by one)`);
      }
    }
    this.windows.clear();
  }

  close(): void {
    this.flush();
  }
}
