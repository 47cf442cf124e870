// Small helpers shared by the hub's CLI commands.
import { access, readFile } from 'node:fs/promises';
import type { CommandContext } from '../../common/platform/cli.js';
import { BentoError } from '../../common/protocol/errors.js';
import { fleetPaths, resolveFleetDir } from '../fleet/paths.js';

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

/**
 * Run an admin-socket call for --dir's fleet. When nothing answers there and
 * the directory is no fleet at all (no hub.json), say that, not "the hub is
 * not running": starting a hub would not help, a wrong --dir is the mistake.
 * Only an absent hub.json counts: an admin of the socket's group may be
 * unable to read the directory of a fleet that exists.
 */
export async function withHub<T>(values: CommandContext['values'], call: (socket: string) => Promise<T>): Promise<T> {
  const p = fleetPaths(fleetDir(values));
  try {
    return await call(p.adminSocket);
  } catch (err) {
    if (err instanceof BentoError && err.code === 'HUB_NOT_RUNNING') {
      const missing = await access(p.hubConfig).then(() => false, (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
      if (missing) throw notAFleet(p.root);
    }
    throw err;
  }
}

export function notAFleet(root: string): BentoError {
  return new BentoError('FLEET_NOT_INITIALIZED', `${root} is not a fleet directory (no hub.json): pass the fleet's --dir (default $BENTO_DIR, else /var/lib/bento), or create one with \`bento-hub init --dir ${root}\``);
}

/** A HOST:PORT option (--listen, --ws-listen), with a message that says what is wrong with it. */
export function listenOption(values: CommandContext['values'], key: string): string | undefined {
  const v = str(values, key);
  if (v === undefined) return undefined;
  const m = /^(?:\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d+)$/.exec(v);
  if (!m) throw new BentoError('USAGE', `--${key} must be HOST:PORT (e.g. 0.0.0.0:2222 or [::]:2222), got "${v}"`);
  const port = Number(m[1]);
  if (!Number.isSafeInteger(port) || port < 1 || port > 65535) throw new BentoError('USAGE', `--${key} ${v}: port ${m[1]} is out of range (1..65535)`);
  return v;
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

const SGR = /\x1b\[[0-9;]*m/g;

/** Columns a string takes on a terminal: colour codes take none. */
export function visibleWidth(s: string): number {
  return s.replace(SGR, '').length;
}

/** Pad to a visible width (padEnd would count the colour codes and misalign coloured cells). */
export function padVisible(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - visibleWidth(s)));
}

export function formatTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(visibleWidth(h), ...rows.map((r) => visibleWidth(r[i] ?? ''))));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : padVisible(c, widths[i]!))).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

export function printTable(head: string[], rows: string[][]): void {
  process.stdout.write(formatTable(head, rows));
}

// Lives with the status table, which uses it too; kept importable from here.
export { ago } from '../status/format.js';

/** Key lines given inline plus those read from files (one per line; blank and # lines skipped). */
export async function keyLines(inline: string[], files: string[]): Promise<string[]> {
  const keys = [...inline];
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new BentoError('USAGE', `--key-file ${f}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
    // The hub needs only the public half; a private key must not be copied around, least of all into the registry.
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      throw new BentoError('INVALID_KEY', `${f} is a private key: give its public half instead (--key-file ${f.endsWith('.pub') ? f : `${f}.pub`}, or \`ssh-keygen -y -f ${f}\`)`);
    }
    keys.push(...text.split('\n').filter((l) => l.trim() && !l.startsWith('#')));
  }
  return keys;
}
