// What the soak prints when a cycle finds a problem: for each problem job id
// or host, the lines of every hub's log file (ClusterFleet `logs`) that name
// it, so the cause can be read without opening every file. A job id is rare:
// every line naming it is shown (up to a bound). A host is named by every
// connect and every job of it: its lines since the cycle began (with some
// lead), the last ones if there are too many. pino's JSON lines are shown as
// "HH:MM:SS.mmm LEVEL msg {other fields}", other lines (markers, stack
// traces) as they are.
import { readFileSync } from 'node:fs';

export interface ExcerptKey {
  /** A job id or a host name, as it appears in the logs. */
  key: string;
  kind: 'job' | 'host';
}

export interface ExcerptOptions {
  /** The hubs' log files, by hub name. */
  files: Array<{ name: string; file: string }>;
  keys: ExcerptKey[];
  /** Wall-clock ms: a host's lines from this moment on (job ids: every line). */
  since: number;
  /** Most lines per key and hub. */
  maxLines: number;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'name']);

/** One log line, shorter; `time` is its pino time in ms (undefined for a line that is not pino's). */
export function formatLine(line: string): { text: string; time: number | undefined } {
  if (!line.startsWith('{')) return { text: line, time: markerTime(line) };
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { text: line, time: undefined };
  }
  const time = typeof o['time'] === 'number' ? o['time'] : undefined;
  const rest = Object.fromEntries(Object.entries(o).filter(([k]) => !HIDDEN.has(k)));
  const at = time === undefined ? '?' : new Date(time).toISOString().slice(11, 23);
  return { text: `${at} ${LEVELS[Number(o['level'])] ?? String(o['level'])} ${String(o['msg'] ?? '')} ${JSON.stringify(rest)}`, time };
}

function markerTime(line: string): number | undefined {
  const m = /^=== (\S+) /.exec(line);
  const t = m ? Date.parse(m[1]!) : NaN;
  return Number.isNaN(t) ? undefined : t;
}

function read(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}

/** The excerpt as text lines, ready to print. */
export function logExcerpts(o: ExcerptOptions): string[] {
  const out: string[] = [];
  const files = o.files.map((f) => ({ ...f, lines: read(f.file) }));
  for (const k of o.keys) {
    out.push(`--- ${k.kind} ${k.key}`);
    for (const f of files) {
      let hits = f.lines.filter((l) => l.includes(k.key)).map(formatLine);
      if (k.kind === 'host') hits = hits.filter((h) => h.time === undefined || h.time >= o.since);
      const shown = k.kind === 'host' ? hits.slice(-o.maxLines) : hits.slice(0, o.maxLines);
      const cut = hits.length - shown.length;
      out.push(`  ${f.name} (${f.file}): ${hits.length} lines${cut ? `, ${cut} not shown` : ''}`);
      for (const h of shown) out.push(`    ${h.text}`);
    }
  }
  return out;
}
