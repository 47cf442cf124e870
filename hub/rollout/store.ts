// Rollouts over the state seam (hub/store/types.ts): one keyed store, an
// index of members per rollout (and of the job carrying each host's turn)
// kept from the store's own change feed (so changes another hub of a cluster
// writes land in it too), and pruning of old finished rollouts.
//
// Writes are fenced by the driver's epoch (records.ts): each is a
// compare-and-swap on the revision this hub sees, and a record written under
// a newer epoch is never overwritten (STATE_CONFLICT): a hub that lost a
// rollout to another driver cannot undo what the new one wrote. One hub is
// the only writer and never sees a conflict.
//
// The fence compares against this hub's view, which can lag: a driver
// resumed after SIGSTOP may not see yet that another hub took the rollout
// over. So no write leaves a hub that may not act now (driver.ts mayAct: its
// own heartbeat has not come back since): a step that was awaiting when the
// hub froze and goes on when it wakes is refused (CLUSTER_UNAVAILABLE)
// instead of writing. Current again, its view has had the others' writes
// delivered in the meantime; NATS orders deliveries per bucket only, so a
// takeover may still arrive just after the heartbeat (docs/rollouts.md).
import { BentoError } from '../../common/protocol/errors.js';
import type { KeyedStore, StateBackend } from '../store/types.js';
import { notCurrent, type RolloutDriving } from './driver.js';
import { isLateTurn, type LateJob } from './late.js';
import { untilView } from '../store/view-wait.js';
import { ROLLOUT_CLAIMS_STORE, ROLLOUTS_STORE, isHostClaim, isRolloutEntry, memberKey, turnRolloutId, type Driver, type HostClaim, type MemberRecord, type RolloutEntry, type RolloutRecord } from './records.js';

/** Finished rollouts kept for `rollout status`; older ones are forgotten. */
export const KEEP_FINISHED = 50;

const EMPTY: ReadonlyMap<string, MemberRecord> = new Map();
/** A conflicting write is tried again at most this often (each time on the newer record). */
const MAX_CAS_ATTEMPTS = 5;

const epochOf = (v: RolloutEntry | undefined): number => (v?.kind === 'rollout' ? v.driver?.epoch : v?.epoch) ?? 0;

export class RolloutStore {
  private readonly rollouts = new Map<string, RolloutRecord>();
  private readonly members = new Map<string, Map<string, MemberRecord>>();
  /** Job id -> the rollout host whose turn it carries. */
  private readonly turns = new Map<string, { id: string; host: string }>();
  /** Rollout id -> its hosts running or queued (a result still to come), so a sweep need not read every host. */
  private readonly open = new Map<string, Set<string>>();
  private readonly unwatch: () => void;

  /**
   * KV: the rollouts and their hosts' records. CLAIMS: which rollout has
   * which host (claims.ts), so two hubs starting overlapping rollouts at
   * once cannot both have a host. DRIVING: whether this hub may write its
   * rollout records now (no option: always, as one hub and the tests that
   * need no fence).
   */
  constructor(private readonly kv: KeyedStore<RolloutEntry>, readonly claims: KeyedStore<HostClaim>, private readonly driving?: Pick<RolloutDriving, 'hub' | 'mayAct'>) {
    for (const key of kv.keys()) this.index(key, kv.get(key));
    this.unwatch = kv.watch((c) => this.index(c.key, c.op === 'set' ? c.value : undefined));
  }

  static async open(backend: StateBackend, o: { driving?: Pick<RolloutDriving, 'hub' | 'mayAct'> } = {}): Promise<RolloutStore> {
    const kv = await backend.openKeyed<RolloutEntry>(ROLLOUTS_STORE, { accept: isRolloutEntry });
    return new RolloutStore(kv, await backend.openKeyed<HostClaim>(ROLLOUT_CLAIMS_STORE, { accept: isHostClaim }), o.driving);
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

  /** How many of rollout ID's hosts are running or queued: their result is still to come, even once it is finished. */
  unsettled(id: string): number {
    return this.open.get(id)?.size ?? 0;
  }

  /** The rollout host whose turn job JOBID carries, if any. */
  turnOf(jobId: string): { id: string; host: string } | undefined {
    return this.turns.get(jobId);
  }

  /**
   * JOB is a turn of a planned host of a kept rollout that its record of the
   * host does not name (late.ts isLateTurn): a trigger still on its way when
   * the driver forgot the turn (recover.ts), or from before a resume. The
   * rollout's driver gives the host its record back (steps.ts adopt).
   */
  lateTurn(job: LateJob): { id: string; host: string } | undefined {
    // One hash per job of a kept rollout only (turnJobId in isLateTurn).
    const id = turnRolloutId(job.id);
    const r = id === null ? undefined : this.rollouts.get(id);
    if (!r || !isLateTurn(r, this.member(r.id, job.host), job)) return undefined;
    return { id: r.id, host: job.host };
  }

  /**
   * Write R, fenced by its driver's epoch; resolves once durable. Readers see
   * it when this resolves (the engine reads its own writes right after).
   */
  async save(r: RolloutRecord): Promise<void> {
    await this.fenced(r.id, { ...r, updatedAt: new Date().toISOString() }, r.driver?.epoch ?? 0);
  }

  /** Write a host's record, under its epoch (the driver's). */
  async saveMember(m: MemberRecord): Promise<void> {
    await this.fenced(memberKey(m.rollout, m.host), m, m.epoch ?? 0);
  }

  /** The host is pending again (its turn comes again); EPOCH: the driver's. */
  async forget(id: string, host: string, epoch: number): Promise<void> {
    await this.fenced(memberKey(id, host), undefined, epoch);
  }

  /** Withdraw rollout ID just started (no host has a record yet), under its driver's EPOCH. */
  async drop(id: string, epoch: number): Promise<void> {
    await this.fenced(id, undefined, epoch);
  }

  /**
   * Become R's driver: a compare-and-swap from the revision this hub sees,
   * epoch + 1. False when another hub changed the record first (it took over,
   * or the old driver wrote): look again. HOLDOFFLINEUNTIL (the driver is
   * gone, its agents reconnecting): offline hosts are held until then, or
   * until the hold the record has, whichever is later.
   */
  async claim(r: RolloutRecord, c: { driver: Omit<Driver, 'epoch'>; holdOfflineUntil?: number }): Promise<RolloutRecord | null> {
    const cur = this.kv.entry(r.id);
    if (cur?.value.kind !== 'rollout' || epochOf(cur.value) !== (r.driver?.epoch ?? 0)) return null;
    const held = cur.value.holdOfflineUntil ? Date.parse(cur.value.holdOfflineUntil) : 0;
    const hold = c.holdOfflineUntil !== undefined && c.holdOfflineUntil > held ? { holdOfflineUntil: new Date(c.holdOfflineUntil).toISOString() } : {};
    const next: RolloutRecord = { ...cur.value, ...hold, driver: { ...c.driver, epoch: epochOf(cur.value) + 1 }, updatedAt: new Date().toISOString() };
    this.mayWrite();
    try {
      await this.kv.set(r.id, next, { expectRevision: cur.revision });
    } catch (err) {
      if (err instanceof BentoError && err.code === 'STATE_CONFLICT') return null;
      throw err;
    }
    this.index(r.id, next);
    return next;
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
    this.mayWrite();
    const finished = this.all().filter((r) => r.state === 'done' || r.state === 'aborted');
    const drop = finished.slice(KEEP_FINISHED).map((r) => r.id);
    await Promise.all(drop.flatMap((id) => [...this.membersOf(id).map((m) => this.kv.delete(memberKey(id, m.host))), this.kv.delete(id)]));
    return drop;
  }

  async close(): Promise<void> {
    this.unwatch();
    await Promise.all([this.kv.close(), this.claims.close()]);
  }

  /**
   * Compare-and-swap KEY to V (undefined: delete it) on the revision this hub
   * sees. A record of a newer driver epoch than EPOCH is never overwritten; a
   * conflict with an older or equal one (this hub's own writes crossing, a
   * late write of a driver that lost the rollout) is tried again on the
   * record that won.
   */
  private async fenced(key: string, v: RolloutEntry | undefined, epoch: number): Promise<void> {
    const id = key.split('/')[0]!;
    for (let attempt = 1; ; attempt++) {
      const cur = this.kv.entry(key);
      const newest = Math.max(epochOf(cur?.value), epochOf(this.rollouts.get(id)));
      if (newest > epoch) {
        throw new BentoError('STATE_CONFLICT', `rollout ${id} is driven by hub ${this.rollouts.get(id)?.driver?.hub ?? '?'} now (epoch ${newest} > ${epoch}); not writing ${key}`);
      }
      const expectRevision = cur?.revision ?? 0;
      // Checked at each attempt, right before the write: the caller may have awaited across a freeze.
      this.mayWrite();
      try {
        if (v) await this.kv.set(key, v, { expectRevision });
        else if (cur) await this.kv.delete(key, { expectRevision });
        this.index(key, v);
        return;
      } catch (err) {
        if (!(err instanceof BentoError && err.code === 'STATE_CONFLICT') || attempt >= MAX_CAS_ATTEMPTS) throw err;
        // Until this hub's view shows the record that won.
        await untilView(() => (this.kv.entry(key)?.revision ?? 0) !== expectRevision);
      }
    }
  }

  /** Throws CLUSTER_UNAVAILABLE when this hub may not act now (top of this file). */
  private mayWrite(): void {
    if (this.driving && !this.driving.mayAct()) throw notCurrent(this.driving.hub);
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
    const old = hosts?.get(host);
    if (old?.jobId && this.turns.get(old.jobId)?.id === id) this.turns.delete(old.jobId);
    this.noteOpen(id, host, v?.kind === 'member' && (v.state === 'running' || v.state === 'queued'));
    if (v?.kind === 'member') {
      if (!hosts) this.members.set(id, (hosts = new Map()));
      hosts.set(host, v);
      if (v.jobId) this.turns.set(v.jobId, { id, host });
    } else if (hosts) {
      hosts.delete(host);
      if (hosts.size === 0) this.members.delete(id);
    }
  }

  private noteOpen(id: string, host: string, open: boolean): void {
    let hosts = this.open.get(id);
    if (open) {
      if (!hosts) this.open.set(id, (hosts = new Set()));
      hosts.add(host);
    } else if (hosts?.delete(host) && hosts.size === 0) {
      this.open.delete(id);
    }
  }
}
