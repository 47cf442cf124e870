// Logs hosts upload into their jail after each job. Names follow upstream
// Bento, so its tools keep working on a migrated fleet:
//
//   YYYYMMDD-HHMMSS_<system store path basename>[_g<generation>]_<outcome>.log.gz
//
// (upstream: YYYYMMDD-HHMM_<system>_<success|failure|rollback|autoupdate>.log.gz;
// seconds and the generation field are additions its parsers ignore.)
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { jailPaths } from './layout.js';

export interface LogInfo {
  name: string;
  /** ISO time from the name (UTC), or null when the name does not follow the format. */
  time: string | null;
  system: string | null;
  generation: number | null;
  outcome: string | null;
  size: number;
  mtime: string;
}

export function parseLogName(name: string): Omit<LogInfo, 'size' | 'mtime'> {
  const base = name.replace(/\.log(\.gz)?$/, '');
  const parts = base.split('_');
  const m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})?$/.exec(parts[0] ?? '');
  if (!m || parts.length < 3) return { name, time: null, system: null, generation: null, outcome: null };
  const time = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}Z`;
  const outcome = parts[parts.length - 1]!;
  let middle = parts.slice(1, -1);
  let generation: number | null = null;
  const g = /^g(\d+)$/.exec(middle[middle.length - 1] ?? '');
  if (g && middle.length > 1) {
    generation = Number(g[1]);
    middle = middle.slice(0, -1);
  }
  return { name, time, system: middle.join('_') || null, generation, outcome };
}

export async function listLogs(fleetDir: string, host: string): Promise<LogInfo[]> {
  const dir = jailPaths(fleetDir, host).logsDir;
  const out: LogInfo[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const st = await lstat(path.join(dir, name)).catch(() => null);
    if (!st?.isFile()) continue;
    out.push({ ...parseLogName(name), size: st.size, mtime: st.mtime.toISOString() });
  }
  return sortLogs(out);
}

/**
 * The most of one log's text read into memory. A host uploads its logs, and
 * a gzip of 100 KiB can inflate to gigabytes: opening such a "log" in the
 * dashboard took the hub from 71 to 573 MiB (found by review), and one at the
 * 64 MiB quota would have run it out of memory.
 */
export const MAX_LOG_TEXT_BYTES = 32 * 1024 * 1024;

/** A log's text: `complete` unless the upload was truncated or the text was cut at `cutAt` bytes. */
export interface LogText { text: string; complete: boolean; cutAt?: number }

/** A log's text; gzip is undone, a truncated upload yields what could be read. */
export async function readLog(fleetDir: string, host: string, name: string): Promise<LogText> {
  const file = path.join(jailPaths(fleetDir, host).logsDir, path.basename(name));
  const st = await lstat(file);
  if (!st.isFile()) throw new Error(`${name} is not a log file`);
  return decodeLog(await readFile(file));
}

/**
 * A log's bytes as text, at most MAXBYTES of it: gzip is undone (streamed, off
 * the event loop, and stopped at the cap); of a truncated upload, what could
 * be read.
 */
export function decodeLog(raw: Buffer, maxBytes = MAX_LOG_TEXT_BYTES): Promise<LogText> {
  if (!(raw[0] === 0x1f && raw[1] === 0x8b)) {
    return Promise.resolve(raw.length > maxBytes ? { text: raw.subarray(0, maxBytes).toString('utf8'), complete: false, cutAt: maxBytes } : { text: raw.toString('utf8'), complete: true });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const z = createGunzip();
    const finish = (complete: boolean, cut: boolean): void => {
      if (settled) return;
      settled = true;
      z.destroy();
      resolve({ text: Buffer.concat(chunks, Math.min(bytes, maxBytes)).toString('utf8'), complete, ...(cut ? { cutAt: maxBytes } : {}) });
    };
    z.on('data', (c: Buffer) => {
      chunks.push(c);
      bytes += c.length;
      if (bytes > maxBytes) finish(false, true);
    });
    z.on('error', () => finish(false, false));
    z.on('end', () => finish(true, false));
    z.end(raw);
  });
}

/** Where `bento-hub logs` finds a host's logs: this hub's jail, and in a cluster also the archive every hub shares. */
export interface LogReader {
  /** HOST's logs, oldest first. */
  list(host: string): Promise<LogInfo[]>;
  /** One log's text, or null if there is no such log. */
  read(host: string, name: string): Promise<LogText | null>;
}

/** Sorted oldest first: by the time in the name, else by mtime. */
export function sortLogs(logs: LogInfo[]): LogInfo[] {
  return logs.sort((a, b) => (a.time ?? a.mtime).localeCompare(b.time ?? b.mtime) || a.name.localeCompare(b.name));
}

/** The embedded hub's logs: its jails' logs/ directories. */
export function fileLogReader(fleetDir: string): LogReader {
  return {
    list: (host) => listLogs(fleetDir, host),
    async read(host, name) {
      if (!(await listLogs(fleetDir, host)).some((l) => l.name === name)) return null;
      return readLog(fleetDir, host, name);
    },
  };
}
