// State from before the journal: the hub first kept one file per record
// (journal.ts says why it stopped). A fleet upgraded from then still has
// those files; the first start moves them into the journal. File backend
// only (file-backend.ts): no other backend has this past.
import { readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/platform/log.js';
import type { KeyedJournal } from './journal.js';

export interface LegacyImport<T> {
  journal: KeyedJournal<T>;
  /** The directory the record files are in (the journal's own). */
  dir: string;
  /** A file's key, or null for a file that is not a record. */
  keyOf: (file: string) => string | null;
  accept: (key: string, value: unknown) => value is T;
  log: Logger;
  /** Only show what the hub would load (offline readers): nothing written or deleted. */
  readOnly: boolean;
}

/**
 * Records in files whose name `keyOf` maps to a key are read, checked with
 * `accept` and added unless the journal already has that key (it is newer);
 * then (not read-only) written with one rewrite and the files deleted, in
 * that order, so a crash in between leaves them in both places, never in
 * neither. Returns how many record files there were.
 */
export async function importLegacyFiles<T>(o: LegacyImport<T>): Promise<number> {
  const names = await readdir(o.dir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err; });
  const files = names.map((f) => [f, o.keyOf(f)] as const).filter((e): e is readonly [string, string] => e[1] !== null);
  for (const [f, key] of files) {
    if (o.journal.has(key)) continue;
    try {
      const v = JSON.parse(await readFile(path.join(o.dir, f), 'utf8')) as unknown;
      if (o.accept(key, v)) o.journal.seed(key, v);
    } catch (err) {
      o.log.warn({ file: f, err: (err as Error).message }, 'skipping an unreadable record file');
    }
  }
  if (o.readOnly || files.length === 0) return files.length;
  await o.journal.compactNow();
  await Promise.all(files.map(([f]) => unlink(path.join(o.dir, f)).catch(() => undefined)));
  o.log.info({ dir: o.dir, records: files.length }, 'moved one-file-per-record state into the journal');
  return files.length;
}
