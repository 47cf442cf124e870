// The cluster's HostHolders (hub/holders/types.ts): which hub holds which
// host, in the shared "holds" bucket (hold-records.ts), changed only by
// compare-and-swap.
//
//   - A hub claims a host at its valid hello: a CAS from the revision it
//     read, epoch + 1. Of hubs racing, one wins; the others read again.
//     The newest claim wins: a hub that died, or froze, cannot block it.
//   - The hub that held it sees the change in its watch and drops its
//     session (REPLACED); its scheduler hands the host over without writing.
//   - Job records carry the stamp (hub, epoch) of the claim they were written
//     under (store/jobs.ts): the fence.
//   - Liveness (liveness.ts): every hub rewrites its heartbeat record; a hub
//     whose beat stopped is dead, and what it held reads as offline. A hub
//     whose own beat has not come back through its watch for a while (NATS
//     away, or the process was paused) refuses to vouch for any host: its
//     stamps throw until it is current again, and then it drops the sessions
//     of hosts another hub took meanwhile.
// Reading the bucket as Holders (list, status, routing) is hold-view.ts.
import { createHash } from 'node:crypto';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { KeyedStore, StoreChange } from '../store/types.js';
import type { LiveSession } from '../server/live-session.js';
import type { Holder, HostHolders, Stamp } from '../holders/types.js';
import { HUB_KEY_PREFIX, type HoldEntry, type HostHold } from './hold-records.js';
import { HubLiveness, type LivenessTiming } from './liveness.js';
import { HoldView } from './hold-view.js';
import { ClaimWaits } from './claim-waits.js';
import { untilView } from '../store/view-wait.js';

export interface ClusterHoldersDeps {
  store: KeyedStore<HoldEntry>;
  hubName: string;
  /** This process's run id (a fresh id per start). */
  run: string;
  sessions: { get(host: string): LiveSession | undefined; all(): LiveSession[] };
  timing: LivenessTiming;
  log: Logger;
  /** How agents reach this hub (cluster.agentUrl). */
  agentUrl?: string;
}

const MAX_CLAIM_ATTEMPTS = 6;

interface Mine { epoch: number; session: LiveSession }

export class ClusterHolders implements HostHolders {
  readonly hubName: string;
  readonly liveness: HubLiveness;
  private readonly mine = new Map<string, Mine>();
  /** Claims NATS did not acknowledge in time, waiting for the watch (claim-waits.ts). */
  private readonly waits = new ClaimWaits();
  private readonly lostFns: Array<(host: string, byHub: string) => void> = [];
  private readonly currentFns: Array<() => void> = [];
  private readonly unwatch: () => void;
  private closing = false;
  private epochFloor: (host: string) => number = () => 0;
  private readonly view: HoldView;

  constructor(private readonly d: ClusterHoldersDeps) {
    this.hubName = d.hubName;
    this.liveness = new HubLiveness({
      store: d.store, hubName: d.hubName, run: d.run, timing: d.timing, log: d.log, ...(d.agentUrl ? { url: d.agentUrl } : {}),
      current: () => this.reconcile(),
    });
    this.view = new HoldView({ store: d.store, hubName: d.hubName, run: d.run, liveness: this.liveness, mine: (host) => this.mine.get(host) });
    this.unwatch = d.store.watch((c) => this.changed(c));
  }

  /** Start the heartbeat; resolves once this hub's first beat came back (it is current and may write). */
  start(): Promise<void> {
    return this.liveness.start();
  }

  async claim(s: LiveSession): Promise<void> {
    const host = s.name;
    for (let attempt = 1; ; attempt++) {
      if (s.closed || this.d.sessions.get(host) !== s || this.closing) return;
      this.waits.claiming(host, s);
      const cur = this.d.store.entry(host);
      const prev = cur && cur.value.t === 'host' ? cur.value : null;
      // Above the host's open job records too. Fences work only while epochs grow, and nats-server
      // 2.9.10 lost an acknowledged claim after kill -9 (the soak: the leader's hold went back to an
      // older claim while a job queued under the lost epoch 4 stayed): the next claim, at 3, was refused
      // by that job's record for good ("held by hub3 now, epoch 4 > 3"), and the job never ran.
      const floor = this.epochFloor(host);
      if (floor > (prev?.epoch ?? 0)) this.d.log.warn({ host, holdEpoch: prev?.epoch ?? 0, jobEpoch: floor }, 'the host\'s job records carry a newer claim than its hold record (the holds bucket lost a write?); claiming above both');
      const epoch = Math.max(prev?.epoch ?? 0, floor) + 1;
      const rec = this.record(s, epoch);
      try {
        await this.d.store.set(host, rec, { expectRevision: cur?.revision ?? 0 });
        this.took(host, epoch, s, prev);
        return;
      } catch (err) {
        const code = err instanceof BentoError ? err.code : null;
        if (code === 'STATE_WRITE_FAILED') {
          // NATS away: the store keeps retrying the CAS; it counts once the watch shows it landed.
          this.d.log.warn({ host, epoch }, 'cannot claim the host yet (NATS does not answer); its session stays, job records wait for the claim');
          if (await this.waits.wait({ host, epoch, base: cur?.revision ?? 0, session: s }) === 'landed') {
            this.took(host, epoch, s, prev);
            return;
          }
          // The hold changed otherwise meanwhile (its holder let go): the retried claim cannot land; claim anew.
          if (attempt >= MAX_CLAIM_ATTEMPTS) throw new BentoError('STATE_CONFLICT', `host ${host}'s hold kept changing while this hub claimed it`);
          continue;
        }
        if (code !== 'STATE_CONFLICT' || attempt >= MAX_CLAIM_ATTEMPTS) throw err;
        await this.viewPast(host, cur?.revision ?? 0);
      }
    }
  }

  floorEpochs(floor: (host: string) => number): void {
    this.epochFloor = floor;
  }

  /**
   * A job of HOST was queued under a claim newer than the one this hub holds
   * it by: nats-server 2.9.10 lost that claim (an acknowledged write) after
   * kill -9, this hub then claimed above what the bucket still showed, and a
   * hub that still saw the lost claim queued the job under it (the soak).
   * The fence refuses that job's writes for good, so the holder raises its
   * claim above it: one compare-and-swap on its own hold record, with its
   * session still here; a record that changed meanwhile, or a host this hub
   * does not hold, answers false (never a takeover).
   */
  async raiseClaim(host: string, above: number): Promise<boolean> {
    const m = this.mine.get(host);
    const cur = this.d.store.entry(host);
    const v = cur?.value.t === 'host' ? cur.value : null;
    if (!m || !cur || !v || !this.isMine(v, m.epoch) || m.session.closed || this.closing) return false;
    const epoch = Math.max(v.epoch, above, this.epochFloor(host)) + 1;
    try {
      await this.d.store.set(host, this.record(m.session, epoch), { expectRevision: cur.revision });
    } catch (err) {
      this.d.log.warn({ host, epoch, err: (err as Error).message }, 'could not raise this hub\'s claim above a job record\'s; the job waits');
      return false;
    }
    const now = this.mine.get(host);
    if (now !== m) {
      // The session ended meanwhile: its release saw the old epoch, so the raised record is let go here.
      if (!now && m.session.closed) { this.mine.set(host, { epoch, session: m.session }); this.release(m.session); }
      return false;
    }
    this.took(host, epoch, m.session, v);
    this.d.log.warn({ host, holdEpoch: v.epoch, jobEpoch: above, epoch }, 'a job record carries a newer claim than this hub\'s hold (the holds bucket lost a write?); raised the claim above it');
    return true;
  }

  release(s: LiveSession): void {
    const m = this.mine.get(s.name);
    if (!m || m.session !== s) return;
    this.mine.delete(s.name);
    if (this.closing) return; // the hub's own record goes instead (close)
    const cur = this.d.store.entry(s.name);
    const v = cur?.value;
    if (!cur || v?.t !== 'host' || !this.isMine(v, m.epoch)) return;
    this.d.store.set(s.name, { ...v, hub: null }, { expectRevision: cur.revision }).catch((err: Error) => {
      this.d.log.debug({ host: s.name, err: err.message }, 'host not released (taken meanwhile, or NATS away)');
    });
  }

  holder(host: string): Holder | null {
    return this.view.holder(host);
  }

  all(): Holder[] {
    return this.view.all();
  }

  stamp(host: string): Stamp | null {
    if (!this.liveness.current) {
      throw new BentoError('CLUSTER_UNAVAILABLE', `hub ${this.hubName} is not in touch with NATS (its heartbeat has not come back for ${Math.round(this.liveness.silentMs / 1000)} s, or it was paused); it cannot vouch that it holds ${host}`);
    }
    const v = this.d.store.get(host);
    const rec = v?.t === 'host' ? v : null;
    const m = this.mine.get(host);
    if (m) {
      if (rec && !this.isMine(rec, m.epoch)) throw this.heldBy(host, rec);
      return { hub: this.hubName, epoch: m.epoch };
    }
    if (rec?.hub && !(rec.hub === this.hubName && rec.run === this.d.run) && this.liveness.alive(rec.hub, rec.run)) throw this.heldBy(host, rec);
    // Nobody holds it: anyone may queue for it, under the epoch it was left at.
    return { hub: this.hubName, epoch: rec?.epoch ?? 0 };
  }

  queuedJobId(host: string): string | null {
    const v = this.d.store.get(host);
    const epoch = v?.t === 'host' ? v.epoch : 0;
    // Every hub derives the same id while the host stays away: one pending job, whoever queues it.
    return `q${epoch}_${createHash('sha256').update(host).digest('base64url').slice(0, 22)}`;
  }

  hubUrls(): string[] {
    return this.liveness.urls();
  }

  /** The live hub with the smallest name settles orphans (every hub agrees on it, give or take a heartbeat). */
  settlesOrphans(): boolean {
    if (!this.liveness.current) return false;
    const alive = this.liveness.hubs().filter((h) => h.alive).map((h) => h.name).sort();
    return alive[0] === this.hubName;
  }

  hubAlive(name: string): boolean {
    return this.liveness.hubs().some((h) => h.name === name && h.alive);
  }

  onCurrent(fn: () => void): void {
    this.currentFns.push(fn);
  }

  onLost(fn: (host: string, byHub: string) => void): void {
    this.lostFns.push(fn);
  }

  /** Hubs by name (from their heartbeats), for `cluster status`. */
  hubs(): ReturnType<HubLiveness['hubs']> {
    return this.liveness.hubs();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.unwatch();
    this.waits.stop();
    await this.liveness.stop();
  }

  // --- internals ---

  private record(s: LiveSession, epoch: number): HostHold {
    const h = s.hello!;
    return {
      t: 'host', host: s.name, hub: this.hubName, run: this.d.run, epoch,
      since: new Date(s.connectedSince).toISOString(), carrier: s.origin.carrier, remoteAddress: s.origin.remoteAddress,
      endpoint: h.via ?? s.origin.endpoint, via: h.via ?? null, agentVersion: h.agentVersion, system: h.system,
      generation: h.generation, configHash: h.configHash, capabilities: h.capabilities.slice(0, 64),
    };
  }

  private took(host: string, epoch: number, s: LiveSession, prev: HostHold | null): void {
    const held = this.mine.get(host);
    // Never over another session of the host that is live here: releasing for S would release its hold.
    if (held && held.session !== s && this.d.sessions.get(host) === held.session) return;
    this.mine.set(host, { epoch, session: s });
    if (prev?.hub && prev.hub !== this.hubName) this.d.log.info({ host, epoch, from: prev.hub }, 'took the host over from another hub');
    // The session ended while the claim was in flight: let go at once.
    if (s.closed || this.d.sessions.get(host) !== s) this.release(s);
  }

  private isMine(v: HostHold, epoch: number): boolean {
    return v.hub === this.hubName && v.run === this.d.run && v.epoch === epoch;
  }

  private heldBy(host: string, rec: HostHold): BentoError {
    return new BentoError('STATE_CONFLICT', `host ${host} is held by hub ${rec.hub ?? '(none)'} now (epoch ${rec.epoch})`);
  }

  /** A change in the bucket (any hub's). */
  private changed(c: StoreChange<HoldEntry>): void {
    if (c.key.startsWith(HUB_KEY_PREFIX)) return; // liveness.ts follows those
    const host = c.key;
    const v = c.op === 'set' && c.value.t === 'host' ? c.value : null;
    this.waits.changed(host, v, c.revision, (rec, epoch) => this.isMine(rec, epoch));
    const m = this.mine.get(host);
    if (!m || (v && this.isMine(v, m.epoch))) return;
    if (v && v.hub === this.hubName && v.run === this.d.run) return; // this hub's own newer claim (a new session of the host)
    if (v === null || v.epoch >= m.epoch) this.lose(host, v);
  }

  /** This hub is current again (its beat came back): drop the sessions of hosts taken meanwhile. */
  private reconcile(): void {
    for (const [host, m] of [...this.mine]) {
      const v = this.d.store.get(host);
      const rec = v?.t === 'host' ? v : null;
      if (!rec || (!this.isMine(rec, m.epoch) && !(rec.hub === this.hubName && rec.run === this.d.run && rec.epoch > m.epoch))) this.lose(host, rec);
    }
    for (const fn of this.currentFns) {
      try { fn(); } catch (err) { this.d.log.error({ err: (err as Error).message }, 'a current-again handler threw'); }
    }
  }

  private lose(host: string, by: HostHold | null): void {
    const m = this.mine.get(host);
    this.mine.delete(host);
    const to = by?.hub ?? '(none)';
    this.d.log.warn({ host, to, epoch: by?.epoch }, 'another hub took this host; dropping its session here');
    m?.session.close('REPLACED', `this host is now held by hub ${to}; a newer connection replaced this one`);
    for (const fn of this.lostFns) {
      try { fn(host, to); } catch (err) { this.d.log.error({ host, err: (err as Error).message }, 'a lost-host handler threw'); }
    }
  }

  private async viewPast(key: string, revision: number): Promise<void> {
    await untilView(() => (this.d.store.entry(key)?.revision ?? 0) !== revision);
  }
}
