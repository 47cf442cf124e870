// The rollout's next step, decided from its record and its hosts' records
// alone (pure, test/unit/rollout-plan.test.ts); steps.ts carries it out and
// asks again until nothing changes.
//
// Rules, in order:
//   1. A wave whose failures (not acknowledged by a resume) pass what it
//      tolerates halts the rollout. Checked for every wave up to the current
//      one, so a late failure (a queued host that ran later, a verdict that
//      replaced an "interrupted") halts it too.
//   2. Hosts of the current wave and the ones before whose turn has come start
//      while fewer than maxInFlight jobs run. A connected host gets its job;
//      an offline one is skipped, queued, or waited for (--offline); a host
//      waited for longer than offlineTimeoutMs fails. Right after its driver
//      changed from a hub that is gone (a restart, a dead hub of a cluster),
//      offline hosts are given time to reconnect first (holdOfflineUntil).
//   3. When every host up to the current wave is settled (healthy, failed
//      within the threshold, skipped, queued, cancelled), the next wave
//      begins, or the rollout is done. --pause-after-canary halts after the
//      first wave instead of going on.
import { toleratedFailures } from './plan.js';
import { parseSize } from '../../common/protocol/rollout.js';
import type { MemberRecord, RolloutRecord } from './records.js';

export interface Situation {
  rollout: RolloutRecord;
  member(host: string): MemberRecord | undefined;
  connected(host: string): boolean;
  now: number;
  /**
   * Until this time an offline host is not skipped, queued or waited for yet:
   * its driver was taken over from a hub that is gone, whose agents are still
   * coming back (records.ts holdOfflineUntil).
   */
  holdOfflineUntil?: number | null;
}

export interface Decision {
  halt: string | null;
  start: string[];
  queue: string[];
  skip: string[];
  wait: string[];
  /** Waited for past offlineTimeoutMs: these fail. */
  expire: string[];
  advance: boolean;
  /** With advance: halt after moving on (--pause-after-canary). */
  pause: boolean;
  done: boolean;
  /** When a waited-for host times out, if any does. */
  wakeAt: number | null;
}

const SETTLED = new Set(['healthy', 'failed', 'skipped', 'queued', 'cancelled']);

export function decide(s: Situation): Decision {
  const r = s.rollout;
  const d: Decision = { halt: null, start: [], queue: [], skip: [], wait: [], expire: [], advance: false, pause: false, done: false, wakeAt: null };
  const maxFailures = parseSize(r.opts.maxFailures, '--max-failures', { zero: true });
  const last = Math.min(r.wave, r.waves.length - 1);
  for (let w = 0; w <= last; w++) {
    const failed = r.waves[w]!.map((h) => s.member(h)).filter((m): m is MemberRecord => m?.state === 'failed' && !m.acknowledged);
    const tolerated = toleratedFailures(maxFailures, r.waves[w]!.length);
    if (failed.length > tolerated) {
      const shown = failed.slice(0, 3).map((m) => `${m.host} (${(m.reason ?? 'failed').slice(0, 200)})`).join('; ');
      d.halt = `wave ${w + 1}: ${failed.length} of ${r.waves[w]!.length} hosts failed, ${tolerated} tolerated: ${shown}${failed.length > 3 ? `; and ${failed.length - 3} more` : ''}`;
      return d;
    }
  }
  let running = 0;
  for (let w = 0; w <= last; w++) for (const h of r.waves[w]!) if (s.member(h)?.state === 'running') running += 1;
  let slots = r.opts.maxInFlight - running;
  let settled = true;
  for (let w = 0; w <= last; w++) {
    for (const h of r.waves[w]!) {
      const m = s.member(h);
      if (m && SETTLED.has(m.state)) continue;
      settled = false;
      if (m?.state === 'running') continue;
      if (s.connected(h)) {
        if (slots > 0) { d.start.push(h); slots -= 1; }
        continue;
      }
      if (!m && s.holdOfflineUntil != null && s.now < s.holdOfflineUntil) {
        d.wakeAt = Math.min(d.wakeAt ?? s.holdOfflineUntil, s.holdOfflineUntil);
        continue;
      }
      if (!m) {
        if (r.opts.offline === 'skip') d.skip.push(h);
        else if (r.opts.offline === 'queue') d.queue.push(h);
        else d.wait.push(h);
        continue;
      }
      // waiting: offline still
      const deadline = Date.parse(m.since) + r.opts.offlineTimeoutMs;
      if (s.now >= deadline) d.expire.push(h);
      else d.wakeAt = Math.min(d.wakeAt ?? deadline, deadline);
    }
  }
  if (!settled) return d;
  if (r.wave + 1 < r.waves.length) {
    d.advance = true;
    d.pause = r.wave === 0 && r.opts.pauseAfterCanary;
  } else {
    d.done = true;
  }
  return d;
}
