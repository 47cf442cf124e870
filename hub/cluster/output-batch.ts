// The format of one message in the job output stream: a batch of consecutive
// lines of one job, `{"f": <seq of the first line>, "l": [[0|1, data], ...]}`
// (0 stdout, 1 stderr). One message per batch, not per line: lines come in
// bursts (a nix build prints thousands), and each message of a job must wait
// for the previous one's ack (it names the previous sequence, see
// job-output.ts), so batching is what keeps a fast job's output flowing.
import type { OutputLine } from '../store/types.js';

export interface Batch {
  /** The seq its writer gave the first line (a hint: a line's seq is its place among the job's stored lines). */
  first: number;
  lines: Array<{ stream: OutputLine['stream']; data: string }>;
}

export function encodeBatch(lines: OutputLine[]): Uint8Array {
  const body = { f: lines[0]!.seq, l: lines.map((l) => [l.stream === 'stderr' ? 1 : 0, l.data]) };
  return new TextEncoder().encode(JSON.stringify(body));
}

/** The lines of one stored message (the reader numbers them by their place in the job's output); null if it is not a batch. */
export function decodeBatch(data: Uint8Array): Batch | null {
  let v: unknown;
  try { v = JSON.parse(new TextDecoder().decode(data)); } catch { return null; }
  if (typeof v !== 'object' || v === null) return null;
  const { f, l } = v as { f?: unknown; l?: unknown };
  if (typeof f !== 'number' || !Number.isSafeInteger(f) || f < 1 || !Array.isArray(l) || l.length === 0) return null;
  const lines: Batch['lines'] = [];
  for (const item of l as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2 || (item[0] !== 0 && item[0] !== 1) || typeof item[1] !== 'string') return null;
    lines.push({ stream: item[0] === 1 ? 'stderr' : 'stdout', data: item[1] });
  }
  return { first: f, lines };
}

/** The bytes a line takes inside a batch: its JSON string (escapes included), the stream tag, brackets and comma. */
export function lineCost(data: string): number {
  return Buffer.byteLength(JSON.stringify(data), 'utf8') + 5;
}

/** Lines from the front of QUEUE whose batch stays within MAX bytes (always at least one). */
export function takeBatch(queue: OutputLine[], max: number): OutputLine[] {
  let cost = 32;
  let n = 0;
  while (n < queue.length) {
    const c = lineCost(queue[n]!.data);
    if (n > 0 && cost + c > max) break;
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
