// The status table as text: one row per host, then one note per host that
// needs attention (the reason of a failure or rollback, what is pending).
import type { HostStatus, HostStateName } from '../../common/protocol/admin.js';
import { short } from './derive.js';
import { rebootNote } from './reboot-report.js';

export const COLUMNS = ['HOST', 'CONNECTION', 'CARRIER', 'PUBLISHED', 'APPLIED', 'STATE', 'LAST JOB', 'AGE', 'TOOK'] as const;

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
  failing: 31, 'rolled back': 31, offline: 90, 'new machine': 90,
};

export function stateColour(state: HostStateName): number {
  return COLOUR[state];
}

export function statusRow(h: HostStatus, now: number): string[] {
  const connection = h.connected ? `up ${ago(h.connectedSince, now)}` : h.lastSeenAt ? `seen ${ago(h.lastSeenAt, now)} ago` : 'never';
  const state = h.state === 'offline' && h.lastKnownState ? `offline (was ${h.lastKnownState})` : h.state;
  const job = h.runningJob ?? h.lastJob;
  const jobText = job ? `${job.action} ${job.state}${job.origin === 'agent' ? ' (host)' : ''}` : '-';
  const age = job ? ago(job.endedAt ?? job.startedAt ?? job.requestedAt, now) : '-';
  const took = job ? (h.runningJob ? `${duration(now - Date.parse(job.startedAt ?? job.requestedAt))}…` : duration(job.durationMs)) : '-';
  return [h.name, connection, h.carrier ?? '-', short(h.published?.hash), short(h.applied), state, jobText, age, took];
}

/** Rows padded into columns; `paint(code, text)` colours the state cell (identity when not a TTY). */
export function renderTable(hosts: HostStatus[], now: number, paint: (code: number, s: string) => string = (_c, s) => s): string {
  if (hosts.length === 0) return 'no hosts registered (bento-hub add-host NAME --key ...)\n';
  const rows = hosts.map((h) => statusRow(h, now));
  const head = [...COLUMNS] as string[];
  const widths = head.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const stateCol = head.indexOf('STATE');
  const line = (cells: string[], colourOf?: number): string => cells.map((c, i) => {
    const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
    return i === stateCol && colourOf !== undefined ? paint(colourOf, padded) : padded;
  }).join('  ').trimEnd();
  const out = [line(head), ...rows.map((r, i) => line(r, stateColour(hosts[i]!.state)))];
  // Up-to-date hosts need no note, unless they just came back from a reboot they asked for.
  const notes = hosts.filter((h) => h.detail && (h.state !== 'up to date' || rebootNote(h.lastReboot, h.lastJob) !== null)).map((h) => `  ${h.name}: ${h.detail}`);
  return `${out.join('\n')}\n${notes.length ? `\n${notes.join('\n')}\n` : ''}`;
}
