// The status table as text: one row per host, then one note per host that
// needs attention (the reason of a failure or rollback, what is pending).
import type { HostStatus, HostStateName } from '../../common/protocol/admin.js';
import { short } from './derive.js';
import { rebootNote } from './reboot-report.js';
import { byAttention } from './order.js';

export const COLUMNS = ['HOST', 'CONNECTION', 'CARRIER', 'PUBLISHED', 'APPLIED', 'SYSTEM', 'GEN', 'STATE', 'JOB', 'WHEN', 'TOOK'] as const;

/** "3s", "5m", "2h", "4d" ago from an ISO time. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

export function duration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}

const COLOUR: Record<HostStateName, number> = {
  'up to date': 32, 'auto updated': 32, running: 36, 'sync pending': 33, 'rebuild pending': 33,
  failing: 31, 'rolled back': 31, offline: 90, 'never connected': 35, 'new machine': 34, 'nothing published': 37,
};

export function stateColour(state: HostStateName): number {
  return COLOUR[state];
}

/**
 * A system store path, short enough for a column: the first 7 characters of
 * its hash and its name without "nixos-system-HOST-" (the NixOS version), e.g.
 * "0a1b2c3-24.11.20241231.abc1234". The hash keeps two builds of one version apart.
 */
export function shortSystem(path: string | null, host: string): string {
  if (!path) return '-';
  const base = path.split('/').pop() ?? path;
  const m = /^([0-9a-z]{32})-(.*)$/.exec(base);
  if (!m) return base.length > 32 ? `${base.slice(0, 31)}~` : base;
  let name = m[2]!;
  for (const prefix of [`nixos-system-${host}-`, 'nixos-system-']) if (name.startsWith(prefix)) { name = name.slice(prefix.length); break; }
  return `${m[1]!.slice(0, 7)}-${name.length > 24 ? `${name.slice(0, 23)}~` : name}`;
}

/** The running job, else the last finished one, and when: "started 3s ago", "ended 5m ago"; a queued job too. */
function jobColumns(h: HostStatus, now: number): { text: string; when: string; took: string } {
  const job = h.runningJob ?? h.lastJob;
  const q = h.queuedJob;
  let text = job ? `${job.action} ${job.state}${job.origin === 'agent' ? ' (host)' : ''}` : '-';
  if (q) text = job ? `${text}, ${q.action} queued` : `${q.action} queued`;
  let when = '-';
  if (h.runningJob) when = `started ${ago(h.runningJob.startedAt ?? h.runningJob.requestedAt, now)} ago`;
  else if (job) when = `ended ${ago(job.endedAt ?? job.startedAt ?? job.requestedAt, now)} ago`;
  else if (q) when = `queued ${ago(q.requestedAt, now)} ago`;
  const took = job ? (h.runningJob ? `${duration(now - Date.parse(job.startedAt ?? job.requestedAt))}…` : duration(job.durationMs)) : '-';
  return { text, when, took };
}

export function statusRow(h: HostStatus, now: number): string[] {
  const connection = h.connected ? `up ${ago(h.connectedSince, now)}` : h.lastSeenAt ? `seen ${ago(h.lastSeenAt, now)} ago` : 'never';
  const state = h.state === 'offline' && h.lastKnownState ? `offline (was ${h.lastKnownState})` : h.state;
  const j = jobColumns(h, now);
  return [h.name, connection, h.carrier ?? '-', short(h.published?.hash), short(h.applied), shortSystem(h.system, h.name),
    h.generation === null ? '-' : String(h.generation), state, j.text, j.when, j.took];
}

/** States whose detail is no news: no note under the table. */
const QUIET: ReadonlySet<HostStateName> = new Set(['up to date', 'nothing published']);

/**
 * Rows padded into columns, the hosts that need attention first (order.ts);
 * `paint(code, text)` colours the state cell (identity when not a TTY).
 */
export function renderTable(hosts: HostStatus[], now: number, paint: (code: number, s: string) => string = (_c, s) => s): string {
  if (hosts.length === 0) return 'no hosts registered (bento-hub add-host NAME --key ...)\n';
  const sorted = byAttention(hosts, (h) => h);
  const rows = sorted.map((h) => statusRow(h, now));
  const head = [...COLUMNS] as string[];
  const widths = head.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const stateCol = head.indexOf('STATE');
  const line = (cells: string[], colourOf?: number): string => cells.map((c, i) => {
    const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
    return i === stateCol && colourOf !== undefined ? paint(colourOf, padded) : padded;
  }).join('  ').trimEnd();
  const out = [line(head), ...rows.map((r, i) => line(r, stateColour(sorted[i]!.state)))];
  // Settled hosts need no note, unless they just came back from a reboot they asked for.
  const notes = sorted.filter((h) => h.detail && (!QUIET.has(h.state) || rebootNote(h.lastReboot, h.lastJob) !== null)).map((h) => `  ${h.name}: ${h.detail}`);
  return `${out.join('\n')}\n${notes.length ? `\n${notes.join('\n')}\n` : ''}`;
}
