// Last known facts per host (last seen, system, config hash), kept durable so
// `status` can say "last seen 3 h ago" after a hub restart. Written on hello,
// on a job's new config and on disconnect: never per heartbeat. One keyed
// store ("hosts") for all hosts; on files that is one group-committed
// journal, so a reconnect storm of 10,000 hellos costs a few fdatasyncs.
import type { RebootReport } from '../../common/protocol/admin.js';
import { isHostName } from '../../common/protocol/names.js';
import type { KeyedStore, StateBackend } from './types.js';

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

/** The keyed store host facts live in. */
export const HOSTS_STORE = 'hosts';

export class HostStateStore {
  constructor(private readonly records: KeyedStore<HostState>) {}

  static async open(backend: StateBackend): Promise<HostStateStore> {
    return new HostStateStore(await backend.openKeyed<HostState>(HOSTS_STORE, { accept: isHostState }));
  }

  get(name: string): HostState | undefined {
    return this.records.get(name);
  }

  /** Merge a patch; readers see it at once, the promise resolves once it is durable. */
  update(name: string, patch: Partial<HostState>): Promise<void> {
    const prev: HostState = this.records.get(name) ?? {
      name, lastConnectedAt: null, lastSeenAt: null, agentVersion: null, system: null,
      generation: null, configHash: null, carrier: null, remoteAddress: null,
    };
    return this.records.set(name, { ...prev, ...patch, name }).then(() => undefined);
  }

  async close(): Promise<void> {
    await this.records.close();
  }
}

export function isHostState(key: string, v: unknown): v is HostState {
  const s = v as Partial<HostState> | null;
  return typeof s === 'object' && s !== null && s.name === key && isHostName(key);
}

/** One host's last known facts, read without a hub (`bento-hub diff`, tests): give it a read-only backend. */
export async function readHostState(backend: StateBackend, name: string): Promise<HostState | null> {
  if (!isHostName(name)) return null;
  const s = await backend.openKeyed<HostState>(HOSTS_STORE, { accept: isHostState });
  try {
    return s.get(name) ?? null;
  } finally {
    await s.close();
  }
}
