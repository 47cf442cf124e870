// The journal's on-disk format: one JSON object per line.
//
//   {"k":KEY,"v":VALUE,"r":REV}   KEY set to VALUE at revision REV
//   {"k":KEY,"d":1,"r":REV}       KEY deleted at revision REV
//   {"rev":REV}                   first line of a rewritten (compacted) file:
//                                 the store's revision counter, so revisions
//                                 keep increasing even when the newest change
//                                 was a deletion the rewrite dropped
//
// Journals written before revisions existed have no "r": replay numbers
// those lines 1, 2, 3, ... in file order, which is the order they happened.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Versioned } from './types.js';

export type Entry =
  | { k: string; v: unknown; r: number | null }
  | { k: string; d: 1; r: number | null }
  | { rev: number };

export const encodeSet = (k: string, v: unknown, r: number): string => JSON.stringify({ k, v, r });
export const encodeDelete = (k: string, r: number): string => JSON.stringify({ k, d: 1, r });
export const encodeHeader = (rev: number): string => JSON.stringify({ rev });

/**
 * Apply ENTRIES in order to VIEW: sets that `accept` takes, deletes; a refused
 * value goes to `dropped`. Returns the last revision seen (the counter to
 * continue from).
 */
export function replay<T>(
  entries: Entry[], accept: (key: string, value: unknown) => value is T,
  view: Map<string, Versioned<T>>, dropped?: (key: string) => void,
): number {
  let rev = 0;
  for (const e of entries) {
    if ('rev' in e) {
      rev = Math.max(rev, e.rev);
      continue;
    }
    // A rewritten file lists records in key order, not revision order: the
    // counter is the highest revision seen, and only unnumbered lines take the next.
    const revision = e.r ?? rev + 1;
    rev = Math.max(rev, revision);
    if ('d' in e) view.delete(e.k);
    else if (accept(e.k, e.v)) view.set(e.k, { value: e.v, revision });
    else dropped?.(e.k);
  }
  return rev;
}

/** Every parseable line of FILE (none if it does not exist), and how many lines were not. */
export async function readEntries(file: string): Promise<{ entries: Entry[]; bad: number }> {
  const entries: Entry[] = [];
  let bad = 0;
  const input = createReadStream(file, { encoding: 'utf8' });
  const opened = await new Promise<boolean>((resolve, reject) => {
    input.once('open', () => resolve(true));
    input.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? resolve(false) : reject(err)));
  });
  if (!opened) return { entries, bad };
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (line === '') continue;
    const e = parseEntry(line);
    if (e) entries.push(e);
    else bad += 1;
  }
  return { entries, bad };
}

function parseEntry(line: string): Entry | null {
  try {
    const e = JSON.parse(line) as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) return null;
    if (typeof e['k'] !== 'string') return isRevision(e['rev']) && Object.keys(e).length === 1 ? { rev: e['rev'] } : null;
    const r = isRevision(e['r']) ? e['r'] : null;
    if (e['d'] === 1) return { k: e['k'], d: 1, r };
    return 'v' in e ? { k: e['k'], v: e['v'], r } : null;
  } catch {
    return null;
  }
}

const isRevision = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0;

/** A change nobody waits for, kept unencoded until its commit (journal.ts): a newer change of its key usually replaces it first. */
export type EventualLine<T> = string | { value: T; revision: number };

/** The eventual changes' lines, encoded now (at their commit). */
export function* eventualLines<T>(pending: Map<string, EventualLine<T>>): Generator<string> {
  for (const [key, l] of pending) yield typeof l === 'string' ? l : encodeSet(key, l.value, l.revision);
}
