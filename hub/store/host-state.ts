// Last known facts per host (last seen, system, config hash), kept on disk so
// `status` can say "last seen 3 h ago" after a hub restart. Written on hello,
// on a job's new config and on disconnect: never per heartbeat. One
// group-committed journal (journal.ts) for all hosts, so a reconnect storm of
// 10,000 hellos costs a few fdatasyncs, not 10,000 atomic file replacements.
import { readFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/platform/log.js';
import { isHostName } from '../../common/protocol/names.js';
import type { RebootReport } from '../../common/protocol/admin.js';
import { KeyedJournal, readJournal } from './journal.js';

export interface HostState {
  name: string;
  lastConnectedAt: string | null;
  lastSeenAt: string | null;
  agentVersion: string | null;
  system: string | null;
  generation: number | null;
  configHash: string | null;
  carrier: string | null;
  remoteAddress: string | null;
  /** The last reboot the agent requested (kernel change) and reported back after; absent if none. */
  lastReboot?: RebootReport;
}

export const HOST_JOURNAL = '_journal.ndjson';

export class HostStateStore {
  private journal: KeyedJournal<HostState> | null = null;

  constructor(private readonly dir: string, private readonly log: Logger) {}

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.journal = await KeyedJournal.open<HostState>({ file: path.join(this.dir, HOST_JOURNAL), log: this.log, accept: isHostState });
    // Hubs before the journal kept one NAME.json per host.
    await this.journal.importFiles(this.dir, (f) => (f.endsWith('.json') && isHostName(f.slice(0, -5)) ? f.slice(0, -5) : null));
  }

  get(name: string): HostState | undefined {
    return this.journal?.get(name);
  }

  /** Merge a patch; readers see it at once, the promise resolves once it is durable. */
  update(name: string, patch: Partial<HostState>): Promise<void> {
    if (!this.journal) return Promise.reject(new Error('HostStateStore used before load()'));
    const prev: HostState = this.journal.get(name) ?? {
      name, lastConnectedAt: null, lastSeenAt: null, agentVersion: null, system: null,
      generation: null, configHash: null, carrier: null, remoteAddress: null,
    };
    return this.journal.set(name, { ...prev, ...patch, name });
  }

  async close(): Promise<void> {
    await this.journal?.close();
  }
}

function isHostState(key: string, v: unknown): v is HostState {
  const s = v as Partial<HostState> | null;
  return typeof s === 'object' && s !== null && s.name === key && isHostName(key);
}

/**
 * One host's last known facts, read without a hub (`bento-hub diff`, tests).
 * A fleet not yet opened by a journal-writing hub still has NAME.json.
 */
export async function readHostState(dir: string, name: string): Promise<HostState | null> {
  if (!isHostName(name)) return null; // never a path
  const v = (await readJournal(path.join(dir, HOST_JOURNAL), isHostState)).get(name)
    ?? await readFile(path.join(dir, `${name}.json`), 'utf8').then((t) => JSON.parse(t) as unknown, () => null);
  return isHostState(name, v) ? v : null;
}
