// Small helpers shared by the hub's CLI commands.
import { readFile } from 'node:fs/promises';
import type { CommandContext } from '../../common/platform/cli.js';
import { resolveFleetDir } from '../fleet/paths.js';

export function str(values: CommandContext['values'], key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

export function strs(values: CommandContext['values'], key: string): string[] {
  const v = values[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function fleetDir(values: CommandContext['values']): string {
  return resolveFleetDir(str(values, 'dir'));
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

export function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  process.stdout.write(`${[line(head), ...rows.map(line)].join('\n')}\n`);
}

/** "3s", "5m", "2h", "4d" ago from an ISO time. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** Key lines given inline plus those read from files (one per line; blank and # lines skipped). */
export async function keyLines(inline: string[], files: string[]): Promise<string[]> {
  const keys = [...inline];
  for (const f of files) keys.push(...(await readFile(f, 'utf8')).split('\n').filter((l) => l.trim() && !l.startsWith('#')));
  return keys;
}
