// Staged rollouts (`bento-hub rollout`, docs/rollouts.md): the words the CLI
// and the hub share. Sizes ("3" or "25%") and durations ("90s", "10m") are
// parsed here once, so the CLI refuses bad input before it connects and the
// hub refuses it again at its edge with the same message.
import { BentoError } from './errors.js';
import type { Action } from './messages.js';

/** What happens to a host that is offline when its turn comes. */
export const OFFLINE_POLICIES = ['skip', 'queue', 'wait'] as const;
export type OfflinePolicy = (typeof OFFLINE_POLICIES)[number];

/** running: waves go on; halted: stopped by a threshold or a pause, resumable; aborted and done: final. */
export const ROLLOUT_STATES = ['running', 'halted', 'aborted', 'done'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

/**
 * One host in a rollout. pending: its turn has not come; waiting: offline,
 * waited for (--offline wait); queued: offline, its job queued at the hub
 * (--offline queue); running: its job was sent; healthy: the job succeeded
 * (rollback window closed, health check passed where the host has one);
 * failed: anything else (failure, rolled back, interrupted, refused, offline
 * past --offline-timeout); skipped: offline at its turn (--offline skip);
 * cancelled: the rollout was aborted before it ran.
 */
export const MEMBER_STATES = ['pending', 'waiting', 'queued', 'running', 'healthy', 'failed', 'skipped', 'cancelled'] as const;
export type MemberState = (typeof MEMBER_STATES)[number];

/** Rollout ids: "r-" and 8 characters of an alphabet without look-alikes (no 0/o, 1/l/i). */
export const ROLLOUT_ID_RE = /^r-[2-9a-hj-km-np-z]{8}$/;

export function isRolloutId(s: unknown): s is string {
  return typeof s === 'string' && ROLLOUT_ID_RE.test(s);
}

/** A count of hosts, absolute or a percentage of some total. */
export type Size = { n: number } | { pct: number };

/** "3" or "25%"; `what` names the option in the error. */
export function parseSize(s: string, what: string, opts: { zero?: boolean } = {}): Size {
  const m = /^(\d{1,6})(%?)$/.exec(s.trim());
  const v = m ? Number(m[1]) : NaN;
  const min = opts.zero ? 0 : 1;
  if (!m || v < min || (m[2] && v > 100)) {
    throw new BentoError('USAGE', `${what} must be a number of hosts (${min} or more) or a percentage like 25% (${min}..100), not ${JSON.stringify(s)}`);
  }
  return m[2] ? { pct: v } : { n: v };
}

export function sizeText(s: Size): string {
  return 'pct' in s ? `${s.pct}%` : String(s.n);
}

/** "90", "90s", "10m", "2h" -> milliseconds (1 s .. 7 days). */
export function parseDuration(s: string, what: string): number {
  const m = /^(\d{1,7})(s|m|h)?$/.exec(s.trim());
  const ms = m ? Number(m[1]) * ({ s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? 's') as 's' | 'm' | 'h'] : NaN;
  if (!m || ms < 1000 || ms > 7 * 86_400_000) throw new BentoError('USAGE', `${what} must be a duration like 90s, 10m or 2h (1s..7 days), not ${JSON.stringify(s)}`);
  return ms;
}

/** What `rollout` asks for, after parsing (the admin op carries the raw strings; see admin.ts). */
export interface RolloutOptions {
  action: Action;
  /** Cumulative wave targets ("1", "10%", ..., the rest makes one more wave); or null: canary, then doubling. */
  waves: Size[] | null;
  canary: Size;
  maxInFlight: Size;
  /** Per wave: failures tolerated (a percentage is of the wave's size, rounded down). */
  maxFailures: Size;
  offline: OfflinePolicy;
  /** --offline wait: how long a host may stay offline at its turn before it counts as failed. */
  offlineTimeoutMs: number;
  /** Halt once the canary wave is healthy, until `rollout resume`. */
  pauseAfterCanary: boolean;
}

/** One host of a rollout, as `rollout status` shows it. */
export interface RolloutHostView {
  host: string;
  /** 1-based. */
  wave: number;
  state: MemberState;
  jobId: string | null;
  /** When it entered this state (null: pending). */
  since: string | null;
  reason: string | null;
  /** The host's own health check (agent setting healthCommand): passed, failed, or null when it has none / did not run. */
  health: 'passed' | 'failed' | null;
}

export interface RolloutWaveView {
  /** 1-based. */
  wave: number;
  size: number;
  /** Failures this wave tolerates before the rollout halts. */
  maxFailures: number;
  counts: Record<MemberState, number>;
}

/** One rollout in a list (`status`, `rollout status`, the dashboard). Fields are only ever added. */
export interface RolloutSummary {
  id: string;
  state: RolloutState;
  action: Action;
  createdAt: string;
  updatedAt: string;
  endedAt: string | null;
  /** Why it halted, was aborted, or how it ended; null while running normally. */
  reason: string | null;
  /** The current wave, 1-based. */
  wave: number;
  waves: number;
  hosts: number;
  maxInFlight: number;
  offline: OfflinePolicy;
  counts: Record<MemberState, number>;
  /** The hub that drives it (a cluster: the one that started it, or took it over); null for a rollout from before drivers. */
  driver: string | null;
}

/** One rollout in full (`rollout status ID`, the follow stream of `rollout`). */
export interface RolloutDetail extends RolloutSummary {
  selection: { all: boolean; tags: string[]; hosts: string[] };
  options: { canary: string; waves: string[] | null; maxFailures: string; offlineTimeoutMs: number; pauseAfterCanary: boolean };
  plan: RolloutWaveView[];
  members: RolloutHostView[];
}

export function emptyCounts(): Record<MemberState, number> {
  return Object.fromEntries(MEMBER_STATES.map((s) => [s, 0])) as Record<MemberState, number>;
}

/** "wave 2/3 · 3/6 healthy · 1 running · 1 failed": the one line a terminal, `status` and the dashboard show. */
export function rolloutLine(r: RolloutSummary): string {
  const c = r.counts;
  const parts = [`wave ${r.wave}/${r.waves}`, `${c.healthy}/${r.hosts} healthy`];
  if (c.running) parts.push(`${c.running} running`);
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.waiting) parts.push(`${c.waiting} waiting for their host`);
  if (c.queued) parts.push(`${c.queued} queued`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
  if (c.pending) parts.push(`${c.pending} pending`);
  return parts.join(' · ');
}
