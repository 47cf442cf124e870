// Summarise a Go CPU profile (pprof protobuf, gzipped), as nats-server
// serves it on its prof_port (`--nats-cpu-prof DIR`): flat and cumulative
// time by function, and flat time by Go package. No Go toolchain needed:
// the format is small (github.com/google/pprof proto/profile.proto) and
// decoded here by hand.
//   node dist/test/bench/pprof-summary.js FILE.pb.gz [--top N] [--match SUBSTRING]
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';

/** A protobuf field: number and either a varint or a byte slice. */
type Field = { n: number; v: bigint } | { n: number; b: Buffer };

function varint(buf: Buffer, at: { i: number }): bigint {
  let r = 0n;
  for (let shift = 0n; ; shift += 7n) {
    const byte = buf[at.i++];
    if (byte === undefined) throw new Error('truncated varint');
    r |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return r;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  const at = { i: 0 };
  while (at.i < buf.length) {
    const key = Number(varint(buf, at));
    const n = key >>> 3;
    switch (key & 7) {
      case 0: out.push({ n, v: varint(buf, at) }); break;
      case 1: out.push({ n, b: buf.subarray(at.i, at.i + 8) }); at.i += 8; break;
      case 2: { const len = Number(varint(buf, at)); out.push({ n, b: buf.subarray(at.i, at.i + len) }); at.i += len; break; }
      case 5: out.push({ n, b: buf.subarray(at.i, at.i + 4) }); at.i += 4; break;
      default: throw new Error(`wire type ${key & 7} not supported`);
    }
  }
  return out;
}

/** Repeated integer field N of a message, packed or not. */
function ints(fs: Field[], n: number): bigint[] {
  const out: bigint[] = [];
  for (const f of fs) {
    if (f.n !== n) continue;
    if ('v' in f) { out.push(f.v); continue; }
    const at = { i: 0 };
    while (at.i < f.b.length) out.push(varint(f.b, at));
  }
  return out;
}

const one = (fs: Field[], n: number): bigint => ints(fs, n)[0] ?? 0n;

export interface PprofSummary {
  /** Total sampled time, seconds. */
  totalS: number;
  /** Per function: self and cumulative seconds. */
  functions: Map<string, { self: number; cum: number }>;
}

export function summarise(raw: Buffer): PprofSummary {
  const top = fields(raw[0] === 0x1f ? gunzipSync(raw) : raw);
  const strings = top.filter((f) => f.n === 6).map((f) => ('b' in f ? f.b.toString('utf8') : ''));
  const fnName = new Map<bigint, string>();
  for (const f of top) if (f.n === 5 && 'b' in f) { const m = fields(f.b); fnName.set(one(m, 1), strings[Number(one(m, 2))] ?? '?'); }
  // A location can stand for several inlined functions (its lines, innermost first).
  const locFns = new Map<bigint, string[]>();
  for (const f of top) {
    if (f.n !== 4 || !('b' in f)) continue;
    const m = fields(f.b);
    locFns.set(one(m, 1), m.filter((x) => x.n === 4 && 'b' in x).map((x) => fnName.get(one(fields((x as { b: Buffer }).b), 1)) ?? '?'));
  }
  // Sample values: [samples, cpu nanoseconds] for a CPU profile; the last one is the time.
  const functions = new Map<string, { self: number; cum: number }>();
  let total = 0;
  for (const f of top) {
    if (f.n !== 2 || !('b' in f)) continue;
    const m = fields(f.b);
    const values = ints(m, 2);
    const s = Number(values[values.length - 1] ?? 0n) / 1e9;
    total += s;
    const stack = ints(m, 1).flatMap((id) => locFns.get(id) ?? ['?']);
    stack.forEach((name, i) => {
      const e = functions.get(name) ?? { self: 0, cum: 0 };
      if (i === 0) e.self += s;
      functions.set(name, e);
    });
    for (const name of new Set(stack)) functions.get(name)!.cum += s;
  }
  return { totalS: total, functions };
}

/** The package of a Go function name: "github.com/nats-io/nats-server/v2/server.(*stream).processJetStreamMsg" -> ".../server". */
function pkg(fn: string): string {
  const slash = fn.lastIndexOf('/');
  const dot = fn.indexOf('.', slash + 1);
  return dot === -1 ? fn : fn.slice(0, dot);
}

if (process.argv[1]?.endsWith('pprof-summary.js')) {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string' }, match: { type: 'string' } }, allowPositionals: true });
  if (positionals.length === 0) {
    process.stderr.write('usage: pprof-summary FILE.pb.gz... [--top N] [--match SUBSTRING]\n');
    process.exit(2);
  }
  const n = Number(values.top ?? 30);
  for (const file of positionals) {
    const s = summarise(readFileSync(file));
    const pct = (x: number): string => `${x.toFixed(2).padStart(7)} s ${((100 * x) / Math.max(1e-9, s.totalS)).toFixed(1).padStart(5)} %`;
    const rows = [...s.functions].filter(([name]) => !values.match || name.includes(values.match));
    process.stdout.write(`${file}: ${s.totalS.toFixed(2)} s sampled\n\nby self time:\n`);
    for (const [name, e] of [...rows].sort((a, b) => b[1].self - a[1].self).slice(0, n)) process.stdout.write(`${pct(e.self)}  ${name}\n`);
    process.stdout.write('\nby cumulative time:\n');
    for (const [name, e] of [...rows].sort((a, b) => b[1].cum - a[1].cum).slice(0, n)) process.stdout.write(`${pct(e.cum)}  ${name}\n`);
    const byPkg = new Map<string, number>();
    for (const [name, e] of s.functions) byPkg.set(pkg(name), (byPkg.get(pkg(name)) ?? 0) + e.self);
    process.stdout.write('\nself time by package:\n');
    for (const [p, x] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`${pct(x)}  ${p}\n`);
    process.stdout.write('\n');
  }
}
