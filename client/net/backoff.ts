// Capped exponential backoff with full jitter (AWS architecture blog's
// "full jitter"): after n failures wait uniformly in [floor, min(cap, base*2^n)].
// The jitter spreads a whole fleet's reconnects after a hub restart; the
// small floor keeps a broken path from ever becoming a busy loop.
export interface BackoffOptions { initialMs: number; maxMs: number }

export class Backoff {
  private failures = 0;

  constructor(private readonly opts: BackoffOptions, private readonly random: () => number = Math.random) {}

  next(): number {
    const ceiling = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    const floor = Math.min(ceiling, Math.max(10, Math.floor(this.opts.initialMs / 10)));
    return Math.round(floor + this.random() * (ceiling - floor));
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}
