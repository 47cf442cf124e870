// A process's resident memory from /proc, and its peak while something runs
// (sampled: a bound checked against the peak holds between samples too, give
// or take one sample period of growth).
import { readFileSync } from 'node:fs';

/** VmRSS of `pid` in bytes (0 once it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples `pid`'s RSS every `everyMs` until stop() (bounded by the caller's own deadline); returns the peak. */
export function watchRss(pid: number, everyMs = 50): { peak(): number; stop(): number } {
  let peak = rssBytes(pid);
  const t = setInterval(() => { peak = Math.max(peak, rssBytes(pid)); }, everyMs);
  return {
    peak: () => peak,
    stop: () => { clearInterval(t); peak = Math.max(peak, rssBytes(pid)); return peak; },
  };
}

export const MiB = 1024 * 1024;
