// Planning a rollout: which hosts go in which wave, how many may run at once,
// how many failures a wave tolerates. Pure functions (test/unit/rollout-plan.test.ts).
//
// Growth rule: without --waves, a canary wave (default 1 host), then each
// wave twice the size of the one before (1, 2, 4, 8, ...), the last one
// taking whatever is left. Doubling reaches 10,000 hosts in 14 waves while
// every wave is at least as large as everything before it combined, so a
// problem that shows on 1 host in N is likely to show before half the fleet
// has it. --waves gives cumulative targets instead ("1,10%,50%,100%": after
// wave 2, 10 % of the hosts have had their turn).
import { BentoError } from '../../common/protocol/errors.js';
import { sizeText, type RolloutOptions, type Size } from '../../common/protocol/rollout.js';
import type { RolloutRecord } from './records.js';

/** A size as a count of `total`: percentages round up (a wave or a limit is never 0 hosts), capped at total. */
export function countOf(size: Size, total: number): number {
  const n = 'pct' in size ? Math.ceil((size.pct * total) / 100) : size.n;
  return Math.max(1, Math.min(total, n));
}

/** Failures a wave of `waveSize` hosts tolerates: percentages round down, so 10% of a 5-host wave is 0. */
export function toleratedFailures(maxFailures: Size, waveSize: number): number {
  return 'pct' in maxFailures ? Math.floor((maxFailures.pct * waveSize) / 100) : maxFailures.n;
}

/**
 * The order hosts take their turn: the hosts named on the command line first,
 * in the order given (name your canaries first), then every other selected
 * host by name.
 */
export function orderHosts(named: readonly string[], selected: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const h of named) if (selected.has(h) && !seen.has(h)) { seen.add(h); out.push(h); }
  for (const h of [...selected].sort()) if (!seen.has(h)) { seen.add(h); out.push(h); }
  return out;
}

/**
 * Hosts per wave. `waves`: cumulative targets; a step that adds no host (10% of
 * 6 hosts after a canary of 1) is dropped, and hosts left after the last step
 * form one more wave. Otherwise `canary`, then doubling.
 */
export function planWaves(hosts: readonly string[], o: { waves: readonly Size[] | null; canary: Size }): string[][] {
  const total = hosts.length;
  if (total === 0) throw new BentoError('NO_TARGETS', 'no hosts to roll out to');
  const bounds: number[] = [];
  if (o.waves) {
    if (o.waves.length === 0) throw new BentoError('USAGE', '--waves needs at least one step, e.g. 1,10%,50%,100%');
    let prev = 0;
    for (const step of o.waves) {
      const upTo = countOf(step, total);
      if (upTo < prev) throw new BentoError('USAGE', `--waves steps are cumulative and must not shrink: ${sizeText(step)} is ${upTo} of ${total} hosts, fewer than the ${prev} before it`);
      if (upTo > prev) bounds.push(upTo);
      prev = upTo;
    }
    if (prev < total) bounds.push(total);
  } else {
    let size = countOf(o.canary, total);
    let upTo = 0;
    while (upTo < total) {
      upTo = Math.min(total, upTo + size);
      bounds.push(upTo);
      size *= 2;
    }
  }
  const waves: string[][] = [];
  let from = 0;
  for (const b of bounds) {
    waves.push(hosts.slice(from, b));
    from = b;
  }
  return waves;
}

const waveIndex = new WeakMap<string[][], Map<string, number>>();

/** The wave of a host (0-based), -1 if it is not in the plan; indexed once per plan, not searched per call. */
export function waveOf(r: { waves: string[][] }, host: string): number {
  let idx = waveIndex.get(r.waves);
  if (!idx) {
    idx = new Map();
    r.waves.forEach((w, i) => { for (const h of w) idx!.set(h, i); });
    waveIndex.set(r.waves, idx);
  }
  return idx.get(host) ?? -1;
}

/** A new rollout's record: the plan fixed once, options as the admin gave them (sizes kept as text). */
export function newRollout(id: string, c: { hosts: string[]; selection: RolloutRecord['selection']; options: RolloutOptions }): RolloutRecord {
  const o = c.options;
  const now = new Date().toISOString();
  return {
    kind: 'rollout', id, action: o.action, createdAt: now, updatedAt: now, endedAt: null,
    state: 'running', wave: 0, reason: null, selection: c.selection,
    waves: planWaves(c.hosts, { waves: o.waves, canary: o.canary }),
    opts: {
      canary: sizeText(o.canary), waves: o.waves?.map(sizeText) ?? null, maxInFlight: countOf(o.maxInFlight, c.hosts.length),
      maxFailures: sizeText(o.maxFailures), offline: o.offline, offlineTimeoutMs: o.offlineTimeoutMs, pauseAfterCanary: o.pauseAfterCanary,
    },
  };
}

/** Why `hosts` cannot have a rollout of their own now (a running or halted one covers some), or null. */
export function overlapping(rollouts: readonly RolloutRecord[], hosts: readonly string[]): string | null {
  const wanted = new Set(hosts);
  for (const r of rollouts) {
    if (r.state !== 'running' && r.state !== 'halted') continue;
    const overlap = r.waves.flat().filter((h) => wanted.has(h));
    if (overlap.length) {
      return `rollout ${r.id} (${r.state}) already covers ${overlap.slice(0, 5).join(', ')}${overlap.length > 5 ? ` and ${overlap.length - 5} more` : ''}; resume or abort it first`;
    }
  }
  return null;
}
