// How many jobs the hub records on one host's word (adopt.ts): a host with a
// valid key that reports jobs it invents must not grow the hub's job records,
// open output logs and durable writes without bound (issue 13 part 2).
//
// What legitimate agents do, which the defaults leave room for:
//   - a job the agent started itself (AGENT_JOB_ID: the local page, `upgrade`,
//     a pull's autoApply): one at a time, the previous one is interrupted;
//   - a job the hub sent just before it died: the one the agent runs now;
//   - after a hub restart that lost state, the results waiting in the agent's
//     outbox (at most 256, MAX_UNREPORTED) replayed at once, each ending at
//     once (not open).
// So: at most adoptOpenPerHost unfinished adopted jobs per host, and at most
// adoptPerWindow adoptions per adoptWindowMs. A refused job.started is
// ignored (its output with it: the hub has no record to put it in); a refused
// job.end is not acknowledged, so the agent keeps it and replays it at its
// next connection, when the window may have room.
import type { Logger } from '../../common/platform/log.js';
import { LogThrottle } from '../../common/platform/log-throttle.js';

export interface AdoptLimits {
  /** Unfinished jobs recorded on the host's word, per host. */
  adoptOpenPerHost: number;
  /** Jobs recorded on the host's word per window, per host. */
  adoptPerWindow: number;
  adoptWindowMs: number;
}

export const ADOPT_DEFAULTS: Readonly<AdoptLimits> = Object.freeze({ adoptOpenPerHost: 8, adoptPerWindow: 512, adoptWindowMs: 3_600_000 });
export const ADOPT_RANGES: Record<keyof AdoptLimits, [number, number]> = {
  adoptOpenPerHost: [1, 10_000],
  adoptPerWindow: [1, 1_000_000],
  adoptWindowMs: [1000, 86_400_000],
};

export type AdoptRefusal = 'open' | 'window';

interface HostCount { open: Set<string>; times: number[]; head: number }

export class AdoptionLimiter {
  private readonly hosts = new Map<string, HostCount>();
  private readonly throttle: LogThrottle;
  /** Refusals so far, by reason (metrics). */
  readonly refused: Record<AdoptRefusal, number> = { open: 0, window: 0 };
  private calls = 0;

  constructor(
    private readonly limits: AdoptLimits,
    /** Whether a job is still unfinished (the store's view); finished ones free their place. */
    private readonly unfinished: (jobId: string) => boolean,
    log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.throttle = new LogThrottle(log);
  }

  /** May `host` have `jobId` recorded on its word (`open`: it is not finished yet)? Counts it if so. */
  admit(host: string, jobId: string, open: boolean): boolean {
    if (++this.calls % 1024 === 0) this.prune();
    let h = this.hosts.get(host);
    if (!h) this.hosts.set(host, (h = { open: new Set(), times: [], head: 0 }));
    const now = this.now();
    while (h.head < h.times.length && h.times[h.head]! <= now - this.limits.adoptWindowMs) h.head++;
    if (h.head > 64 && h.head * 2 > h.times.length) { h.times = h.times.slice(h.head); h.head = 0; }
    for (const id of h.open) if (!this.unfinished(id)) h.open.delete(id);
    const refusal: AdoptRefusal | null = open && h.open.size >= this.limits.adoptOpenPerHost ? 'open'
      : h.times.length - h.head >= this.limits.adoptPerWindow ? 'window' : null;
    if (refusal) {
      this.refused[refusal]++;
      const why = refusal === 'open'
        ? `it already has ${h.open.size} unfinished jobs the hub recorded on its word (limits.adoptOpenPerHost)`
        : `it had ${this.limits.adoptPerWindow} jobs recorded on its word in the last ${this.limits.adoptWindowMs / 1000} s (limits.adoptPerWindow)`;
      this.throttle.warn(`adopt-${refusal}`, { source: host, host, jobId }, `refused to record a job the agent reports but the hub has no record of: ${why}`);
      return false;
    }
    h.times.push(now);
    if (open) h.open.add(jobId);
    return true;
  }

  /** Forget a host's counts when it has none left to keep (no adoption in the window). */
  prune(): void {
    const since = this.now() - this.limits.adoptWindowMs;
    for (const [host, h] of this.hosts) {
      if ((h.times.at(-1) ?? 0) <= since && [...h.open].every((id) => !this.unfinished(id))) this.hosts.delete(host);
    }
  }

  close(): void {
    this.throttle.close();
  }
}
