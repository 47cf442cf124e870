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

// Lives with the status table, which uses it too; kept importable from here.
export { ago } from '../status/format.js';

/** Key lines given inline plus those read from files (one per line; blank and # lines skipped). */
export async function keyLines(inline: string[], files: string[]): Promise<string[]> {
  const keys = [...inline];
  for (const f of files) keys.push(...(await readFile(f, 'utf8')).split('\n').filter((l) => l.trim() && !l.startsWith('#')));
  return keys;
}
