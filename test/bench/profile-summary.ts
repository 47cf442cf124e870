// Summarise a V8 .cpuprofile (from `--hub-cpu-prof DIR`): self time by
// function and by source file/package, optionally within a time window.
//   node dist/test/bench/profile-summary.js FILE.cpuprofile [--from S] [--to S] [--top N] [--callers FUNCTION] [--under TEXT]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface Node { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const { values, positionals } = parseArgs({
  options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string' }, callers: { type: 'string' }, under: { type: 'string' } },
  allowPositionals: true,
});
const file = positionals[0];
if (!file) {
  process.stderr.write('usage: profile-summary FILE.cpuprofile [--from S] [--to S] [--top N] [--callers FUNCTION] [--under TEXT]\n');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const from = Number(values.from ?? 0) * 1e6;
const to = values.to === undefined ? Infinity : Number(values.to) * 1e6;
const top = Number(values.top ?? 30);

const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parentOf = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
/** --under TEXT: only samples with a frame (itself or a caller) whose "function file:line" contains TEXT. */
const underCache = new Map<number, boolean>();
function isUnder(id: number): boolean {
  if (values.under === undefined) return true;
  const known = underCache.get(id);
  if (known !== undefined) return known;
  const cf = byId.get(id)!.callFrame;
  const p = parentOf.get(id);
  const yes = `${cf.functionName || '(anonymous)'} ${where(cf.url)}:${cf.lineNumber + 1}`.includes(values.under) || (p !== undefined && isUnder(p));
  underCache.set(id, yes);
  return yes;
}
const selfUs = new Map<number, number>();
let t = 0;
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i] ?? 0;
  if (t < from || t > to || !isUnder(prof.samples[i]!)) continue;
  const dt = prof.timeDeltas[i + 1] ?? 0;
  selfUs.set(prof.samples[i]!, (selfUs.get(prof.samples[i]!) ?? 0) + dt);
  total += dt;
}

function where(url: string): string {
  if (!url) return '(native/vm)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) return url.slice(nm + 13).split('/').slice(0, 1).join('/') + ' ' + url.slice(nm + 13).split('/').slice(1).join('/');
  const d = url.indexOf('/dist/');
  if (d !== -1) return url.slice(d + 6);
  return url.replace(/^node:/, 'node:');
}

const fn = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const cf = n.callFrame;
  const key = `${cf.functionName || '(anonymous)'}  ${where(cf.url)}:${cf.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  const fk = cf.url ? where(cf.url).split(' ')[0]! : cf.functionName;
  files.set(fk, (files.get(fk) ?? 0) + us);
}
const pct = (us: number): string => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1e3).toFixed(0).padStart(7)} ms`;
process.stdout.write(`window ${(total / 1e6).toFixed(1)} s of samples (profile spans ${((prof.endTime - prof.startTime) / 1e6).toFixed(1)} s)\n\nby package / file:\n`);
for (const [k, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);
process.stdout.write('\nby function (self time):\n');
for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);

if (values.callers) {
  // Self time of the named function, by its call path (up to 6 frames).
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const paths = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName !== values.callers) continue;
    const chain: string[] = [];
    for (let p = parent.get(id); p !== undefined && chain.length < 6; p = parent.get(p)) {
      const cf = byId.get(p)!.callFrame;
      chain.push(`${cf.functionName || '(anonymous)'}@${where(cf.url).split(' ').pop()}:${cf.lineNumber + 1}`);
    }
    const key = chain.join(' < ');
    paths.set(key, (paths.get(key) ?? 0) + us);
  }
  process.stdout.write(`\ncallers of ${values.callers}:\n`);
  for (const [k, us] of [...paths].sort((a, b) => b[1] - a[1]).slice(0, 10)) process.stdout.write(`${pct(us)}  ${k}\n`);
}
