// Last known facts per host (last seen, system, config hash), kept on disk so
// `status` can say "last seen 3 h ago" after a hub restart. Written on hello
// and on disconnect only: never per heartbeat.
import { readFile, readdir, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeJsonAtomic } from '../../common/platform/atomic.js';
import { isHostName } from '../../common/protocol/names.js';
import { hostFile } from '../fleet/paths.js';

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
}

export class HostStateStore {
  private readonly states = new Map<string, HostState>();

  constructor(private readonly dir: string) {}

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const f of await readdir(this.dir)) {
      const name = f.endsWith('.json') ? f.slice(0, -5) : '';
      if (!isHostName(name)) continue;
      try {
        this.states.set(name, JSON.parse(await readFile(path.join(this.dir, f), 'utf8')) as HostState);
      } catch { /* a torn file cannot happen (atomic writes); an unreadable one is skipped */ }
    }
  }

  get(name: string): HostState | undefined {
    return this.states.get(name);
  }

  async update(name: string, patch: Partial<HostState>): Promise<void> {
    const prev: HostState = this.states.get(name) ?? {
      name, lastConnectedAt: null, lastSeenAt: null, agentVersion: null, system: null,
      generation: null, configHash: null, carrier: null, remoteAddress: null,
    };
    const next = { ...prev, ...patch, name };
    this.states.set(name, next);
    await writeJsonAtomic(hostFile(this.dir, name, '.json'), next, { mode: 0o600 });
  }
}
