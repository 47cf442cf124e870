// The embedded hub's StateBackend: everything under FLEET/state/, owned by the
// one hub process that serves the fleet.
//
//   state/NAME/_journal.ndjson   keyed store NAME (journal.ts): "jobs", "hosts"
//   state/jobs/ID.log            job output (job-log.ts)
//
// Hubs before the journal kept one file per record (state/jobs/ID.json,
// state/hosts/NAME.json); opening "jobs" or "hosts" moves those into the
// journal. That past belongs to this backend alone, so it stays here.
//
// A read-only open (offline tools such as `bento-hub diff`, and tests that
// check what is on disk) reads exactly what the hub would load, legacy files
// included, and never writes.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { BentoError } from '../../common/protocol/errors.js';
import { silentLogger, type Logger } from '../../common/platform/log.js';
import { isHostName, isJobId } from '../../common/protocol/names.js';
import type { JobOutputStore, KeyedStore, StateBackend } from './types.js';
import { importLegacyFiles } from './journal-import.js';
import { KeyedJournal } from './journal.js';
import { FileJobOutput } from './job-log.js';

export const JOURNAL_FILE = '_journal.ndjson';

/** One-file-per-record layouts of older hubs: file name -> key, or null for other files. */
const LEGACY: Record<string, (file: string) => string | null> = {
  jobs: (f) => (f.endsWith('.json') && isJobId(f.slice(0, -5)) ? f.slice(0, -5) : null),
  hosts: (f) => (f.endsWith('.json') && isHostName(f.slice(0, -5)) ? f.slice(0, -5) : null),
};

const STORE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export interface FileBackendOptions {
  /** FLEET/state. */
  stateDir: string;
  log?: Logger;
  readOnly?: boolean;
}

export class FileBackend implements StateBackend {
  readonly kind = 'file' as const;
  private readonly opened = new Set<{ close(): Promise<void> }>();
  private readonly log: Logger;

  constructor(private readonly o: FileBackendOptions) {
    this.log = o.log ?? silentLogger();
  }

  async openKeyed<T>(name: string, opts: { accept: (key: string, value: unknown) => value is T }): Promise<KeyedStore<T>> {
    if (!STORE_NAME.test(name)) throw new BentoError('INTERNAL', `invalid store name "${name}"`);
    const dir = path.join(this.o.stateDir, name);
    if (!this.o.readOnly) await mkdir(dir, { recursive: true, mode: 0o700 });
    const log = this.log.child({ store: name });
    const j = await KeyedJournal.open<T>({ file: path.join(dir, JOURNAL_FILE), log, accept: opts.accept, readOnly: this.o.readOnly });
    const legacy = LEGACY[name];
    if (legacy) await importLegacyFiles({ journal: j, dir, keyOf: legacy, accept: opts.accept, log, readOnly: this.o.readOnly === true });
    this.opened.add(j);
    return j;
  }

  async openOutput(): Promise<JobOutputStore> {
    const dir = path.join(this.o.stateDir, 'jobs');
    if (!this.o.readOnly) await mkdir(dir, { recursive: true, mode: 0o700 });
    const out = await FileJobOutput.open(dir, this.log.child({ store: 'output' }), this.o.readOnly);
    this.opened.add(out);
    return out;
  }

  /** Closes what is still open (each store's close is idempotent). */
  async close(): Promise<void> {
    const all = [...this.opened];
    this.opened.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}

export function openFileBackend(o: FileBackendOptions): FileBackend {
  return new FileBackend(o);
}
