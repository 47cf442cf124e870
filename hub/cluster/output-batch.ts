// The format of one message in the job output stream: a batch of consecutive
// lines of one job, `{"f": <seq of the first line>, "l": [[0|1|2, data, ts], ...]}`
// (0 stdout, 1 stderr, 2 the agent's note; ts: when append() stored the line,
// ms since the epoch). Batches written before lines had a time and a third
// stream (`[0|1, data]`) are still read, with ts null. One message per batch, not per line: lines come in
// bursts (a nix build prints thousands), and each message of a job must wait
// for the previous one's ack (it names the previous sequence, see
// job-output.ts), so batching is what keeps a fast job's output flowing.
// `"w": TAG` (absent from older hubs, which ignore it): the writer that
// numbered the lines, so `f` counts in that writer's numbering; a batch holds
// one writer's consecutive lines.
import { randomBytes } from 'node:crypto';
import type { OutputLine } from '../store/types.js';

/** A writer's tag: 48 random bits, unique among one job's few writers (the bus carries it with every line, so short). */
export function writerTag(): string {
  return randomBytes(6).toString('base64url');
}

export interface Batch {
  /** The seq its writer gave the first line (a hint: a line's seq is its place among the job's stored lines). */
  first: number;
  /** The writer's tag (absent: an older hub's batch). */
  w?: string;
  lines: Array<Omit<OutputLine, 'seq'>>;
}

const CODE: Record<OutputLine['stream'], number> = { stdout: 0, stderr: 1, note: 2 };
const STREAMS: ReadonlyArray<OutputLine['stream']> = ['stdout', 'stderr', 'note'];

export function encodeBatch(lines: OutputLine[]): Uint8Array {
  // f: the seq the line was published with (ws), which a renumbering does not change.
  const first = lines[0]!;
  const body = { f: first.ws ?? first.seq, ...(first.w ? { w: first.w } : {}), l: lines.map((l) => (l.ts === null ? [CODE[l.stream], l.data] : [CODE[l.stream], l.data, l.ts])) };
  return new TextEncoder().encode(JSON.stringify(body));
}

/** The lines of one stored message (the reader numbers them by their place in the job's output); null if it is not a batch. */
export function decodeBatch(data: Uint8Array): Batch | null {
  let v: unknown;
  try { v = JSON.parse(new TextDecoder().decode(data)); } catch { return null; }
  if (typeof v !== 'object' || v === null) return null;
  const { f, l, w } = v as { f?: unknown; l?: unknown; w?: unknown };
  if (typeof f !== 'number' || !Number.isSafeInteger(f) || f < 1 || !Array.isArray(l) || l.length === 0) return null;
  const lines: Batch['lines'] = [];
  for (const item of l as unknown[]) {
    if (!Array.isArray(item) || (item.length !== 2 && item.length !== 3) || typeof item[1] !== 'string') return null;
    const stream = typeof item[0] === 'number' ? STREAMS[item[0]] : undefined;
    const ts: unknown = item[2];
    if (!stream || (ts !== undefined && (!Number.isSafeInteger(ts) || (ts as number) < 0))) return null;
    lines.push({ stream, data: item[1], ts: (ts as number | undefined) ?? null });
  }
  return { first: f, ...(typeof w === 'string' && w.length > 0 && w.length <= 64 ? { w } : {}), lines };
}

/** The bytes a line takes inside a batch: its JSON string (escapes included), the stream tag, the time, brackets and commas. */
export function lineCost(data: string): number {
  return Buffer.byteLength(JSON.stringify(data), 'utf8') + 20;
}

/**
 * Lines from the front of QUEUE whose batch stays within MAX bytes (always at
 * least one), of one writer with consecutive seqs (a batch says only its
 * first: the rest are numbered from it).
 */
export function takeBatch(queue: OutputLine[], max: number): OutputLine[] {
  const head = queue[0];
  let cost = 32 + (head?.w ? head.w.length + 8 : 0);
  let n = 0;
  while (n < queue.length) {
    const l = queue[n]!;
    const c = lineCost(l.data);
    if (n > 0 && (cost + c > max || l.w !== head!.w || (l.ws ?? l.seq) !== (head!.ws ?? head!.seq) + n)) break;
    cost += c;
    n += 1;
  }
  return queue.splice(0, n);
}

/** LINES within a byte budget: whole lines while their data fits, and at least one so a reader always advances. */
export function withinBytes(lines: OutputLine[], limitBytes: number | undefined): OutputLine[] {
  if (limitBytes === undefined) return lines;
  let used = 0;
  const out: OutputLine[] = [];
  for (const l of lines) {
    used += Buffer.byteLength(l.data, 'utf8');
    if (out.length > 0 && used > limitBytes) break;
    out.push(l);
  }
  return out;
}

/**
 * Which of a writer's lines not stored yet (UNSTORED, in order) a read gives
 * after the stored ones. Their seq is a guess while another writer stores
 * too (job-output.ts): an identity read tells them by who numbered them
 * (STOREDUPTO: per writer, the last seq it gave a stored line) and says they
 * are held; a plain read, by seq past AFTER (the stored lines' end, or the
 * reader's place).
 */
export function unstoredLines(unstored: OutputLine[], o: { identity: boolean; after: number; storedUpTo: Map<string, number> }): OutputLine[] {
  if (o.identity) return unstored.filter((l) => l.ws! > (o.storedUpTo.get(l.w!) ?? 0)).map((l) => ({ ...l, held: true }));
  return unstored.filter((l) => l.seq > o.after).map((l) => ({ seq: l.seq, stream: l.stream, data: l.data, ts: l.ts }));
}
