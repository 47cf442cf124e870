// Rollouts over the state seam (hub/store/types.ts): one keyed store, an
// index of members per rollout kept from the store's own change feed (so
// changes another hub of a cluster writes land in it too), and pruning of
// old finished rollouts.
import { BentoError } from '../../common/protocol/errors.js';
import type { KeyedStore, StateBackend } from '../store/types.js';
import { ROLLOUTS_STORE, isRolloutEntry, memberKey, type MemberRecord, type RolloutEntry, type RolloutRecord } from './records.js';

/** Finished rollouts kept for `rollout status`; older ones are forgotten. */
export const KEEP_FINISHED = 50;

const EMPTY: ReadonlyMap<string, MemberRecord> = new Map();

export class RolloutStore {
  private readonly rollouts = new Map<string, RolloutRecord>();
  private readonly members = new Map<string, Map<string, MemberRecord>>();
  private readonly unwatch: () => void;

  constructor(private readonly kv: KeyedStore<RolloutEntry>) {
    for (const key of kv.keys()) this.index(key, kv.get(key));
    this.unwatch = kv.watch((c) => this.index(c.key, c.op === 'set' ? c.value : undefined));
  }

  static async open(backend: StateBackend): Promise<RolloutStore> {
    return new RolloutStore(await backend.openKeyed<RolloutEntry>(ROLLOUTS_STORE, { accept: isRolloutEntry }));
  }

  get(id: string): RolloutRecord | undefined {
    return this.rollouts.get(id);
  }

  /** The rollout, or UNKNOWN_ROLLOUT. */
  require(id: string): RolloutRecord {
    const r = this.rollouts.get(id);
    if (!r) throw new BentoError('UNKNOWN_ROLLOUT', `no rollout ${id} (see \`bento-hub rollout status\`)`);
    return r;
  }

  /** Newest first. */
  all(): RolloutRecord[] {
    return [...this.rollouts.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  }

  member(id: string, host: string): MemberRecord | undefined {
    return this.members.get(id)?.get(host);
  }

  /** Host -> record, read-only (the index itself: do not keep it across awaits). */
  memberMap(id: string): ReadonlyMap<string, MemberRecord> {
    return this.members.get(id) ?? EMPTY;
  }

  membersOf(id: string): MemberRecord[] {
    return [...(this.members.get(id)?.values() ?? [])];
  }

  /** Resolves once durable. */
  // Writers index their own change at once: the engine reads its own writes
  // right away, whenever a backend's change feed delivers them.
  async save(r: RolloutRecord): Promise<void> {
    const rec: RolloutRecord = { ...r, updatedAt: new Date().toISOString() };
    this.index(r.id, rec);
    await this.kv.set(r.id, rec);
  }

  async saveMember(m: MemberRecord): Promise<void> {
    const key = memberKey(m.rollout, m.host);
    this.index(key, m);
    await this.kv.set(key, m);
  }

  /** The host is pending again (its turn comes again). */
  async forget(id: string, host: string): Promise<void> {
    const key = memberKey(id, host);
    this.index(key, undefined);
    await this.kv.delete(key);
  }

  /** Any change to any rollout; returns the unsubscribe function. */
  watchAll(fn: () => void): () => void {
    return this.kv.watch(() => fn());
  }

  /** Every change to one rollout (host null) or one of its hosts; returns the unsubscribe function. */
  watch(id: string, fn: (host: string | null) => void): () => void {
    return this.kv.watch((c) => {
      if (c.key === id) fn(null);
      else if (c.key.startsWith(`${id}/`)) fn(c.key.slice(id.length + 1));
    });
  }

  /** Forget the oldest finished rollouts beyond KEEP_FINISHED, with their hosts' records. */
  async prune(): Promise<string[]> {
    const finished = this.all().filter((r) => r.state === 'done' || r.state === 'aborted');
    const drop = finished.slice(KEEP_FINISHED).map((r) => r.id);
    await Promise.all(drop.flatMap((id) => [...this.membersOf(id).map((m) => this.kv.delete(memberKey(id, m.host))), this.kv.delete(id)]));
    return drop;
  }

  async close(): Promise<void> {
    this.unwatch();
    await this.kv.close();
  }

  private index(key: string, v: RolloutEntry | undefined): void {
    const slash = key.indexOf('/');
    if (slash === -1) {
      if (v?.kind === 'rollout') this.rollouts.set(key, v);
      else this.rollouts.delete(key);
      return;
    }
    const id = key.slice(0, slash);
    const host = key.slice(slash + 1);
    let hosts = this.members.get(id);
    if (v?.kind === 'member') {
      if (!hosts) this.members.set(id, (hosts = new Map()));
      hosts.set(host, v);
    } else if (hosts) {
      hosts.delete(host);
      if (hosts.size === 0) this.members.delete(id);
    }
  }
}
