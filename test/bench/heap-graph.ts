// A V8 .heapsnapshot as a graph for heap-diff.ts: node labels, self sizes,
// reachability, the dominator tree (Cooper, Harvey and Kennedy's iterative
// algorithm over a reverse postorder), retained sizes, and each node's owner
// (its nearest dominator that is a named object or closure). Weak edges are
// left out, as DevTools does: they do not keep anything alive.

interface RawSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
  /** [node offset, script id, line, column] per closure (V8 11+). */
  locations?: number[];
}

export interface Snapshot {
  readonly count: number;
  reachable(i: number): boolean;
  /** "Constructor" for objects, "closure NAME", "(string)", "(object properties)", ... */
  label(i: number): string;
  name(i: number): string;
  selfSize(i: number): number;
  isString(i: number): boolean;
  /** Named objects and closures own what they alone keep alive. */
  isOwner(i: number): boolean;
  owner(i: number): number;
  retained(i: number): number;
  /** Outgoing edges (weak ones too): edge type, property name or index, target. */
  edges(i: number): Array<{ type: string; name: string; to: number }>;
  /** Nodes with a strong edge to `i`. */
  retainers(i: number): number[];
}

const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string']);

export function loadSnapshot(raw: RawSnapshot): Snapshot {
  const meta = raw.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const types = meta.node_types[0];
  const tOff = meta.node_fields.indexOf('type');
  const nOff = meta.node_fields.indexOf('name');
  const sOff = meta.node_fields.indexOf('self_size');
  const cOff = meta.node_fields.indexOf('edge_count');
  const etOff = meta.edge_fields.indexOf('type');
  const toOff = meta.edge_fields.indexOf('to_node');
  const weak = meta.edge_types[0].indexOf('weak');
  const enOff = meta.edge_fields.indexOf('name_or_index');
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings } = raw;
  const count = nodes.length / nf;

  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) { firstEdge[i] = e; e += nodes[i * nf + cOff]! * ef; firstEdge[i + 1] = e; }
  const strong = (e: number): boolean => edges[e + etOff] !== weak;
  const target = (e: number): number => edges[e + toOff]! / nf;

  // Postorder numbers by an iterative depth-first search from the root (node 0).
  const post = new Int32Array(count).fill(-1);
  const order = new Uint32Array(count);
  const seen = new Uint8Array(count);
  const stack = new Uint32Array(count);
  const cursor = new Uint32Array(count);
  let top = 0;
  let done = 0;
  stack[0] = 0; seen[0] = 1; cursor[0] = firstEdge[0]!;
  while (top >= 0) {
    const v = stack[top]!;
    let e = cursor[v]!;
    while (e < firstEdge[v + 1]! && (!strong(e) || seen[target(e)])) e += ef;
    if (e < firstEdge[v + 1]!) {
      cursor[v] = e + ef;
      const w = target(e);
      seen[w] = 1; cursor[w] = firstEdge[w]!;
      stack[++top] = w;
    } else {
      post[v] = done; order[done++] = v; top--;
    }
  }

  // Predecessors of reachable nodes (CSR).
  const predStart = new Uint32Array(count + 1);
  for (let v = 0; v < count; v++) {
    if (post[v]! < 0) continue;
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef) if (strong(e)) predStart[target(e) + 1]!++;
  }
  for (let i = 0; i < count; i++) predStart[i + 1]! += predStart[i]!;
  const preds = new Uint32Array(predStart[count]!);
  const fill = predStart.slice(0, count);
  for (let v = 0; v < count; v++) {
    if (post[v]! < 0) continue;
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef) if (strong(e)) preds[fill[target(e)]!++] = v;
  }

  const idom = new Int32Array(count).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (post[a]! < post[b]!) a = idom[a]!;
      while (post[b]! < post[a]!) b = idom[b]!;
    }
    return a;
  };
  for (let changed = true, rounds = 0; changed && rounds < 1000; rounds++) {
    changed = false;
    for (let k = done - 2; k >= 0; k--) {
      const v = order[k]!;
      let d = -1;
      for (let p = predStart[v]!; p < predStart[v + 1]!; p++) {
        const u = preds[p]!;
        if (idom[u]! < 0) continue;
        d = d < 0 ? u : intersect(u, d);
      }
      if (d >= 0 && idom[v] !== d) { idom[v] = d; changed = true; }
    }
  }

  const typeOf = (i: number): string => types[nodes[i * nf + tOff]!]!;
  const name = (i: number): string => strings[nodes[i * nf + nOff]!] ?? '';
  const selfSize = (i: number): number => nodes[i * nf + sOff]!;
  const isOwner = (i: number): boolean => {
    const t = typeOf(i);
    return (t === 'object' && !name(i).startsWith('system /')) || t === 'closure';
  };
  const retained = new Float64Array(count);
  for (let k = 0; k < done; k++) {
    const v = order[k]!;
    retained[v]! += selfSize(v);
    if (v !== 0) retained[idom[v]!]! += retained[v]!;
  }
  const owner = new Int32Array(count);
  for (let k = done - 1; k >= 0; k--) {
    const v = order[k]!;
    owner[v] = v === 0 || isOwner(v) ? v : owner[idom[v]!]!;
  }
  // Where a closure's function is defined: " file.js:LINE" (its script via shared -> script).
  const lines = new Map<number, number>();
  const loc = raw.locations ?? [];
  for (let k = 0; k + 3 < loc.length; k += 4) lines.set(loc[k]! / nf, loc[k + 2]! + 1);
  const edgeTo = (i: number, edgeName: string): number => {
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += ef) if (strings[edges[e + enOff]!] === edgeName) return target(e);
    return -1;
  };
  const where = (i: number): string => {
    const shared = edgeTo(i, 'shared');
    const script = shared < 0 ? -1 : edgeTo(shared, 'script');
    const file = script < 0 ? '' : name(script).replace(/^.*\//, '');
    return file ? ` ${file}:${lines.get(i) ?? '?'}` : '';
  };
  const label = (i: number): string => {
    const t = typeOf(i);
    if (i === 0) return '(root)';
    if (t === 'object' || t === 'hidden' || t === 'array' || t === 'synthetic') return name(i) || `(${t})`;
    if (t === 'closure') return `closure ${name(i) || '(anonymous)'}${where(i)}`;
    if (STRING_TYPES.has(t)) return '(string)';
    if (t === 'native') return `native ${name(i)}`;
    if (t === 'code') return `(code) ${name(i)}`;
    return `(${t})`;
  };
  return {
    count,
    reachable: (i) => post[i]! >= 0,
    label,
    name,
    selfSize,
    isString: (i) => STRING_TYPES.has(typeOf(i)),
    isOwner,
    owner: (i) => owner[i]!,
    retained: (i) => retained[i]!,
    edges: (i) => {
      const out: Array<{ type: string; name: string; to: number }> = [];
      for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += ef) {
        const type = edgeTypes[edges[e + etOff]!]!;
        const n = edges[e + enOff]!;
        out.push({ type, name: type === 'element' || type === 'hidden' ? `[${n}]` : strings[n] ?? String(n), to: target(e) });
      }
      return out;
    },
    retainers: (i) => [...preds.subarray(predStart[i]!, predStart[i + 1]!)],
  };
}
