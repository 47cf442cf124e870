// Measurement helpers for the bench: CPU and memory of a process read from
// /proc (so the hub is measured from outside, exactly as it runs), percentiles,
// and the printed table. Linux only.
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and ')': fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime + stime of pid in seconds (its own threads; the hub forks no children). */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  if (!f) return NaN;
  // After the comm field: [0]=state, [11]=utime, [12]=stime (fields 14, 15 of proc(5)).
  return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
}

/** User and system CPU seconds of pid, separately. */
export function cpuSplit(pid: number): { user: number; sys: number } {
  const f = statFields(pid);
  if (!f) return { user: NaN, sys: NaN };
  return { user: Number(f[11]) / ticksPerSecond(), sys: Number(f[12]) / ticksPerSecond() };
}

/** CPU seconds (user + sys) per thread of pid: "main", and "name:tid" for the others. */
export function threadCpu(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[] = [];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // The main thread's tid is the pid; node's other threads (V8 platform workers,
      // libuv threadpool, inspector) mostly keep the name "node" on this version.
      const key = tid === String(pid) ? 'main' : `${name}:${tid}`;
      out[key] = (out[key] ?? 0) + (Number(f[11]) + Number(f[12])) / ticksPerSecond();
    } catch { /* thread gone */ }
  }
  return out;
}

/** Machine-wide busy CPU seconds (all cores; everything but idle and iowait) from /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const busy = v[0]! + v[1]! + v[2]! + v[5]! + v[6]! + v[7]!;
    return busy / ticksPerSecond();
  } catch {
    return NaN;
  }
}

export interface MemSample { rssKiB: number; pssKiB: number }

/** RSS and PSS of one process from /proc/PID/smaps_rollup (KiB). */
export function memOf(pid: number): MemSample {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const pick = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return { rssKiB: pick('Rss'), pssKiB: pick('Pss') };
  } catch {
    return { rssKiB: NaN, pssKiB: NaN };
  }
}

/** All live descendants of pid (children, grandchildren, ...). */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  for (let i = 0; i < queue.length && i < 100_000; i++) {
    for (const c of children.get(queue[i]!) ?? []) { out.push(c); queue.push(c); }
  }
  return out;
}

/** Summed RSS and PSS of pid and all its descendants, and how many processes that is. */
export function treeMem(pid: number): MemSample & { processes: number } {
  const pids = [pid, ...descendantPids(pid)];
  let rss = 0;
  let pss = 0;
  let n = 0;
  for (const p of pids) {
    const m = memOf(p);
    if (!Number.isFinite(m.rssKiB)) continue;
    rss += m.rssKiB;
    pss += m.pssKiB;
    n++;
  }
  return { rssKiB: rss, pssKiB: pss, processes: n };
}

/** Nearest-rank percentile of an unsorted sample (p in 0..100). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function mean(values: number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

export function round(v: number, digits = 3): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export interface Row {
  metric: string;
  value: string;
  target?: string;
  verdict?: 'ok' | 'MISS' | '';
}

export function renderTable(rows: Row[]): string {
  const head: Row = { metric: 'metric', value: 'measured', target: 'target', verdict: '' };
  const all = [head, ...rows];
  const w0 = Math.max(...all.map((r) => r.metric.length));
  const w1 = Math.max(...all.map((r) => r.value.length));
  const w2 = Math.max(...all.map((r) => (r.target ?? '').length));
  const line = (r: Row): string => `${r.metric.padEnd(w0)}  ${r.value.padStart(w1)}  ${(r.target ?? '').padEnd(w2)}  ${r.verdict ?? ''}`.trimEnd();
  return [line(head), `${'-'.repeat(w0)}  ${'-'.repeat(w1)}  ${'-'.repeat(w2)}  ----`, ...rows.map(line)].join('\n');
}

/** Markdown version of the same table, for docs/performance.md. */
export function renderMarkdown(rows: Row[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  return [
    '| metric | measured | target | |',
    '|---|---:|---|---|',
    ...rows.map((r) => `| ${esc(r.metric)} | ${esc(r.value)} | ${esc(r.target ?? '')} | ${r.verdict ?? ''} |`),
  ].join('\n');
}
