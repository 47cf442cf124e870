// Why objects of one type are alive, from a V8 heap snapshot: the outgoing
// edges of a few instances (with retained sizes), and the most common
// retainer chains up to the root. A companion of heap-diff.ts.
//
//   node dist/test/bench/heap-inspect.js FILE.heapsnapshot --type LABEL [--sample K] [--depth D]
//
// LABEL is a type as heap-diff prints it ("Ticket", "closure onClose", "(object properties)").
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadSnapshot } from './heap-graph.js';

const { values, positionals } = parseArgs({
  options: { type: { type: 'string' }, sample: { type: 'string' }, depth: { type: 'string' } },
  allowPositionals: true,
});
if (positionals.length !== 1 || !values.type) {
  process.stderr.write('usage: heap-inspect FILE.heapsnapshot --type LABEL [--sample K] [--depth D]\n');
  process.exit(2);
}
const sample = Number(values.sample ?? 3);
const depth = Number(values.depth ?? 8);
const s = loadSnapshot(JSON.parse(readFileSync(positionals[0]!, 'utf8')));
const hits: number[] = [];
for (let i = 0; i < s.count; i++) if (s.reachable(i) && s.label(i) === values.type) hits.push(i);
process.stdout.write(`${hits.length} reachable nodes labelled ${values.type}\n`);

const short = (i: number): string => `${s.label(i)}${s.isString(i) ? ` "${s.name(i).slice(0, 40)}"` : ''} (${s.selfSize(i)}/${s.retained(i)} B)`;
for (const i of hits.slice(0, sample)) {
  process.stdout.write(`\n${short(i)} edges:\n`);
  for (const e of s.edges(i)) process.stdout.write(`  ${e.type} ${e.name} -> ${short(e.to)}\n`);
}

// Retainer chains: from each instance, repeatedly its first retainer that is not already on the chain.
const chains = new Map<string, number>();
const every = Math.max(1, Math.floor(hits.length / 500));
for (let k = 0; k < hits.length; k += every) {
  const path: string[] = [];
  const on = new Set<number>();
  let v = hits[k]!;
  for (let d = 0; d < depth && v !== 0; d++) {
    on.add(v);
    const r = s.retainers(v).find((u) => !on.has(u));
    if (r === undefined) break;
    const edge = s.edges(r).find((e) => e.to === v);
    path.push(`${s.label(r)}.${edge?.name ?? '?'}`);
    v = r;
  }
  const key = path.join(' <- ');
  chains.set(key, (chains.get(key) ?? 0) + 1);
}
process.stdout.write('\nretainer chains (instance <- ...), sampled:\n');
for (const [k, c] of [...chains].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`  ${c}x ${k}\n`);
