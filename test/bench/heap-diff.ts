// What each connected session costs a server's heap, by type: two V8 heap
// snapshots of the same process (`npm run bench -- --heap-snapshots DIR`:
// hub-0 / hub-N, floor-0 / floor-N), the second with N more sessions.
//
//   node dist/test/bench/heap-diff.js BEFORE.heapsnapshot AFTER.heapsnapshot --sessions N [--top K]
//
// Prints four tables, every figure divided by N:
// - self bytes by node type and constructor (closures by function name:
//   closures per session show up here);
// - bytes by owner: each object's self size is charged to its nearest
//   dominator that is a named object or closure (so a Map's hash table, an
//   object's out-of-line properties or a closure's private context count
//   for their owner; DevTools' "retained size" without double counting);
// - retained size per instance of the types that grew by at least N/2
//   (one LiveSession, one ssh2 Protocol, ...);
// - duplicated strings: copies of the same text beyond the first, grouped by
//   shape (digits as #), e.g. a host name held in five places.
// Dominators as in DevTools: weak edges do not hold an object alive.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadSnapshot, type Snapshot } from './heap-graph.js';

const { values, positionals } = parseArgs({
  options: { sessions: { type: 'string' }, top: { type: 'string' } },
  allowPositionals: true,
});
const n = Number(values.sessions);
if (positionals.length !== 2 || !Number.isInteger(n) || n < 1) {
  process.stderr.write('usage: heap-diff BEFORE.heapsnapshot AFTER.heapsnapshot --sessions N [--top K]\n');
  process.exit(2);
}
const top = Number(values.top ?? 30);

interface Tally { count: number; bytes: number }
type Table = Map<string, Tally>;

function add(t: Table, key: string, bytes: number, count = 1): void {
  const x = t.get(key);
  if (x) { x.count += count; x.bytes += bytes; } else t.set(key, { count, bytes });
}

/** Self bytes by type, bytes by owner, retained bytes by type, duplicate strings by shape. */
function tables(s: Snapshot): { self: Table; owner: Table; retained: Table; dupes: Table } {
  const self: Table = new Map();
  const owner: Table = new Map();
  const retained: Table = new Map();
  const dupes: Table = new Map();
  const seen = new Map<string, number>();
  for (let i = 0; i < s.count; i++) {
    if (!s.reachable(i)) continue;
    const key = s.label(i);
    add(self, key, s.selfSize(i));
    add(owner, s.label(s.owner(i)), s.selfSize(i), 0);
    if (s.isOwner(i)) { add(retained, key, s.retained(i)); add(owner, key, 0, 1); }
    if (s.isString(i)) {
      const text = s.name(i);
      const copies = (seen.get(text) ?? 0) + 1;
      seen.set(text, copies);
      if (copies > 1) add(dupes, text.slice(0, 60).replace(/[0-9]/g, '#').replace(/\s+/g, ' '), s.selfSize(i));
    }
  }
  return { self, owner, retained, dupes };
}

function diff(a: Table, b: Table): Array<[string, Tally]> {
  const out: Array<[string, Tally]> = [];
  for (const [k, v] of b) {
    const w = a.get(k) ?? { count: 0, bytes: 0 };
    out.push([k, { count: v.count - w.count, bytes: v.bytes - w.bytes }]);
  }
  for (const [k, w] of a) if (!b.has(k)) out.push([k, { count: -w.count, bytes: -w.bytes }]);
  return out.sort((x, y) => Math.abs(y[1].bytes) - Math.abs(x[1].bytes));
}

function print(title: string, rows: Array<[string, Tally]>, countTitle: string): void {
  const total = rows.reduce((t, [, v]) => t + v.bytes, 0);
  process.stdout.write(`\n## ${title} (total ${(total / n).toFixed(0)} B per session)\n\n| type | ${countTitle} per session | bytes per session |\n|---|---:|---:|\n`);
  for (const [k, v] of rows.slice(0, top)) {
    process.stdout.write(`| ${k.replace(/\|/g, '\\|')} | ${(v.count / n).toFixed(2)} | ${(v.bytes / n).toFixed(0)} |\n`);
  }
}

const load = (file: string): Snapshot => loadSnapshot(JSON.parse(readFileSync(file, 'utf8')));
const before = tables(load(positionals[0]!));
const after = tables(load(positionals[1]!));
print('Self size by type', diff(before.self, after.self), 'objects');
print('Bytes by owner (nearest named dominator)', diff(before.owner, after.owner), 'owners');
process.stdout.write(`\n## Retained size per instance, types with at least ${Math.ceil(n / 2)} more instances\n\n| type | more instances per session | retained bytes each |\n|---|---:|---:|\n`);
const grown = diff(before.retained, after.retained).filter(([, v]) => v.count >= n / 2);
for (const [k, v] of grown.sort((x, y) => y[1].count - x[1].count).slice(0, top)) {
  const all = after.retained.get(k)!;
  process.stdout.write(`| ${k.replace(/\|/g, '\\|')} | ${(v.count / n).toFixed(2)} | ${(all.bytes / all.count).toFixed(0)} |\n`);
}
print('Duplicated strings (copies beyond the first), by shape', diff(before.dupes, after.dupes), 'copies');
