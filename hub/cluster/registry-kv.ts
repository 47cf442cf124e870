// The host registry shared by every hub of a cluster: one record per host in
// a keyed store (NATS: the KV bucket `<prefix>_registry`), plus one claim per
// public key (`<prefix>_registry-keys`, fingerprint -> host) so that one key
// identifies one host across hubs, where no single lock can say so.
//
// It is both seams of hub/fleet/registry.ts: the RegistryView every hub
// authenticates agents against (the store's local view, kept current by its
// watch, so an add-host at any hub is seen by all within a moment and a read
// never waits), and the RegistryStore the CLI edits through.
//
// Editing: update(fn) runs the same pure edit functions as the file registry
// (addHost, changeHostKeys, removeHost) on the current view, then writes only
// what changed, each record by compare-and-swap on the revision it was read
// at. Two admins adding different hosts at two hubs touch different records:
// both land. Two changing the same host: one wins, the other's fn runs again
// on the newer registry (and so fails with HOST_EXISTS, or applies on top).
//
// Keys: before a host record gains a key, the key is claimed (a create, exact
// on every NATS version). A claim that points to another host which holds
// that key, or is younger than CLAIM_STALE_MS (an add-host in progress at
// another hub), makes fn run again and then fail with KEY_IN_USE. An older
// claim whose host does not hold the key (a hub died between claim and
// record) is taken over by compare-and-swap. After writing the record the
// claim is read again; if another hub took it meanwhile (possible only after
// this hub stalled for longer than CLAIM_STALE_MS) the record is rolled back.
//
// The keys bucket also holds the seeded marker (registry-records.ts).
import { BentoError } from '../../common/protocol/errors.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import type { Logger } from '../../common/platform/log.js';
import type { HostEntry, RegistryFile, RegistryStore, RegistryView } from '../fleet/registry.js';
import type { KeyedStore, StateBackend, Versioned } from '../store/types.js';
import { untilView } from '../store/view-wait.js';
import { isHostEntry, isKeyClaim, isKeysRecord, SEEDED_KEY, type KeyClaim, type SeededMarker } from './registry-records.js';

export { isHostEntry, isKeyClaim, isSeededMarker, SEEDED_KEY, type KeyClaim, type SeededMarker } from './registry-records.js';

export const REGISTRY_STORE = 'registry';
export const REGISTRY_KEYS_STORE = 'registry-keys';

/** An add-host in progress at another hub takes at most a few write deadlines; a claim older than this whose host lacks the key was left behind. */
export const CLAIM_STALE_MS = 60_000;
/**
 * How long update() keeps running fn again while other hubs win: long enough
 * for a competing add-host at another hub to finish its writes (each has a
 * write deadline of 10 s by default), so the loser sees the winner's record
 * and fails with the right code (HOST_EXISTS, KEY_IN_USE).
 */
const UPDATE_BUDGET_MS = 20_000;

/** Another hub won a record this update read: run fn again on the newer registry. */
class Stale extends Error {}

export class KvRegistry implements RegistryView, RegistryStore {
  /**
   * The view as a RegistryFile, changed in place by the store's watch: a
   * reader (authentication in a reconnect storm) never waits for a copy of
   * 45,000 hosts, and loading the bucket does not copy it per host. Records
   * are replaced, never mutated, so a reader holding one keeps a consistent one.
   */
  private readonly view: RegistryFile = { version: 1, hosts: Object.create(null) as Record<string, HostEntry> };
  private readonly unwatch: () => void;

  private constructor(
    private readonly hosts: KeyedStore<HostEntry>,
    private readonly claims: KeyedStore<KeyClaim | SeededMarker>,
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly budgetMs: number,
  ) {
    for (const name of hosts.keys()) this.view.hosts[name] = hosts.get(name)!;
    this.unwatch = hosts.watch((c) => {
      const v = c.op === 'set' ? hosts.get(c.key) : undefined;
      if (v) this.view.hosts[c.key] = v;
      else delete this.view.hosts[c.key];
    });
  }

  static async open(backend: Pick<StateBackend, 'openKeyed'>, o: { log: Logger; now?: () => number; updateBudgetMs?: number }): Promise<KvRegistry> {
    const hosts = await backend.openKeyed<HostEntry>(REGISTRY_STORE, { accept: isHostEntry });
    try {
      const claims = await backend.openKeyed<KeyClaim | SeededMarker>(REGISTRY_KEYS_STORE, { accept: isKeysRecord });
      return new KvRegistry(hosts, claims, o.log, o.now ?? Date.now, o.updateBudgetMs ?? UPDATE_BUDGET_MS);
    } catch (err) {
      await hosts.close();
      throw err;
    }
  }

  get snapshot(): RegistryFile {
    return this.view;
  }

  async refresh(): Promise<RegistryFile> {
    return this.snapshot;
  }

  async read(): Promise<RegistryFile> {
    return structuredClone(this.snapshot);
  }

  update(fn: (reg: RegistryFile) => RegistryFile): Promise<RegistryFile> {
    return this.updateIn(null, fn);
  }

  /**
   * Add NAME with ENTRY unless the cluster has it (a hub seeding an empty
   * cluster from its registry.json, content-adopt.ts); false if it was there.
   * Reads and writes that one record only: update() copies and compares the
   * whole registry, once per host that made seeding 45,000 hosts quadratic
   * (the 45,000-agent bench's hubs did not start within 120 s).
   */
  async addIfAbsent(name: string, entry: HostEntry): Promise<boolean> {
    let added = false;
    await this.updateIn([name], (reg) => {
      added = !reg.hosts[name];
      return added ? { ...reg, hosts: { ...reg.hosts, [name]: entry } } : reg;
    });
    return added;
  }

  /** Whether the cluster's registry was seeded (content-adopt.ts): then no hub's registry.json adds hosts, even to an empty registry. */
  get seeded(): boolean {
    return this.claims.has(SEEDED_KEY);
  }

  /** Mark the registry seeded: a create, so the first hub wins and the others find it there (not an error). */
  async markSeeded(by: string): Promise<void> {
    try {
      await this.claims.set(SEEDED_KEY, { seeded: true, by, at: new Date(this.now()).toISOString() }, { expectRevision: 0 });
    } catch (err) {
      if (!(err instanceof BentoError && err.code === 'STATE_CONFLICT')) throw err;
    }
  }

  /** update() over the records named in SCOPE (null: every record); FN sees only those. */
  private async updateIn(scope: string[] | null, fn: (reg: RegistryFile) => RegistryFile): Promise<RegistryFile> {
    const started = this.now();
    for (let attempt = 1; ; attempt++) {
      // Each record with the revision it was read at, from the store itself (its own writes
      // are in it as soon as acknowledged): an edit never rests on an older value than it fences.
      const before: RegistryFile = { version: 1, hosts: {} };
      const revisions = new Map<string, number>();
      for (const name of scope ?? this.hosts.keys()) {
        const e = this.hosts.entry(name);
        if (!e) continue;
        before.hosts[name] = e.value;
        revisions.set(name, e.revision);
      }
      // fn gets its own copy: it must not be able to change the view.
      const next = fn(structuredClone(before));
      try {
        await this.apply(before, next, revisions);
        return next;
      } catch (err) {
        if (!(err instanceof Stale) && !(err instanceof BentoError && err.code === 'STATE_CONFLICT')) throw err;
        if (this.now() - started > this.budgetMs) {
          throw new BentoError('STATE_CONFLICT', `the registry kept changing at other hubs; nothing more was changed, try again (${(err as Error).message})`);
        }
        // The winner's write may not be in this hub's view yet.
        await new Promise((r) => setTimeout(r, Math.min(500, 25 * attempt)));
      }
    }
  }

  async close(): Promise<void> {
    this.unwatch();
    await Promise.allSettled([this.hosts.close(), this.claims.close()]);
  }

  /** Write every host record that differs between BEFORE and NEXT. */
  private async apply(before: RegistryFile, next: RegistryFile, revisions: Map<string, number>): Promise<void> {
    const names = new Set([...Object.keys(before.hosts), ...Object.keys(next.hosts)]);
    for (const name of [...names].sort()) {
      const old = before.hosts[name];
      const neu = next.hosts[name];
      if (JSON.stringify(old) === JSON.stringify(neu)) continue;
      const rev = revisions.get(name) ?? 0;
      if (!neu) {
        await this.hosts.delete(name, { expectRevision: rev });
        await this.release(name, old!.keys);
        continue;
      }
      if (!isHostEntry(name, neu)) throw new BentoError('INTERNAL', `refusing to store an invalid registry record for ${name}`);
      const added = neu.keys.filter((k) => !old?.keys.includes(k));
      const since = this.now();
      const claimed = await this.claimAll(name, added);
      let revision: number;
      try {
        revision = await this.hosts.set(name, neu, { expectRevision: rev });
      } catch (err) {
        await this.releaseUnheld(name, claimed, rev);
        throw err;
      }
      await this.confirmClaims(name, old, added, revision, since);
      await this.release(name, old?.keys.filter((k) => !neu.keys.includes(k)) ?? []);
    }
  }

  /** Claim each key for HOST; returns the ones newly claimed (to release if the record cannot be written). */
  private async claimAll(host: string, keys: string[]): Promise<string[]> {
    const done: string[] = [];
    try {
      for (const key of keys) if (await this.claim(host, key)) done.push(key);
    } catch (err) {
      await this.release(host, done);
      throw err;
    }
    return done;
  }

  /** true: claimed now; false: already ours. Throws Stale when another host holds it (fn then says KEY_IN_USE). */
  private async claim(host: string, key: string): Promise<boolean> {
    const fp = fingerprintOfKeyLine(key);
    const value: KeyClaim = { host, at: new Date(this.now()).toISOString() };
    const cur = this.claimOf(fp);
    if (cur?.value.host === host) return false;
    if (cur) {
      const holder = this.hosts.get(cur.value.host);
      const age = this.now() - Date.parse(cur.value.at);
      if (holder?.keys.includes(key)) throw new BentoError('KEY_IN_USE', `key ${fp} is already registered to "${cur.value.host}"; one key identifies one host`);
      if (!(age > CLAIM_STALE_MS)) throw new Stale(`key ${fp} is being registered to "${cur.value.host}" at another hub`);
      this.log.warn({ key: fp, was: cur.value.host, host }, 'taking over a key claim left behind by an add-host that did not finish');
    }
    try {
      await this.claims.set(fp, value, { expectRevision: cur?.revision ?? 0 });
    } catch (err) {
      if (err instanceof BentoError && err.code === 'STATE_CONFLICT') throw new Stale(`key ${fp} was claimed at another hub`);
      throw err;
    }
    return true;
  }

  /**
   * After the record landed: another hub may take a claim over only once it
   * is CLAIM_STALE_MS old, so if claiming and writing took less than half of
   * that (the other half covers clocks that disagree) the claims still hold.
   * A hub that stalled longer (SIGSTOP) cannot know: it rolls the record back
   * and runs fn again.
   */
  private async confirmClaims(host: string, old: HostEntry | undefined, keys: string[], revision: number, since: number): Promise<void> {
    if (keys.length === 0) return;
    const lost = keys.filter((k) => this.claimOf(fingerprintOfKeyLine(k))?.value.host !== host);
    if (lost.length === 0 && this.now() - since < CLAIM_STALE_MS / 2) return;
    this.log.error({ host, keys: keys.map(fingerprintOfKeyLine) }, 'writing a host record took so long that its key claims may have been taken over; rolling the record back');
    const undo = old ? this.hosts.set(host, old, { expectRevision: revision }) : this.hosts.delete(host, { expectRevision: revision });
    await undo.catch((err: unknown) => {
      this.log.error({ host, err: (err as Error).message }, 'could not roll the record back');
    });
    throw new Stale(`the claims on ${host}'s keys may have been taken over meanwhile`);
  }

  /** The claim on fingerprint FP (the bucket's other record, the seeded marker, is never one). */
  private claimOf(fp: string): Versioned<KeyClaim> | undefined {
    const e = this.claims.entry(fp);
    return e && isKeyClaim(fp, e.value) ? { value: e.value, revision: e.revision } : undefined;
  }

  /**
   * This write of HOST's record (read at revision REV) failed: drop the claims
   * it made on KEYS, but not one the record that won holds. Two writers adding
   * the same host with the same key share its claim (the second finds it
   * "already ours"); when the claim's maker lost the record to the other,
   * releasing it deleted the claim of a key the stored record has, and the key
   * could then be registered to another host (found by review: 30 of 40 claims
   * left after two seedings at once). So the winner's record is waited for in
   * this hub's view first (briefly: it may not have arrived), and what it
   * holds is kept.
   */
  private async releaseUnheld(host: string, keys: string[], rev: number): Promise<void> {
    if (keys.length === 0) return;
    await untilView(() => (this.hosts.entry(host)?.revision ?? 0) > rev);
    const held = this.hosts.get(host)?.keys ?? [];
    await this.release(host, keys.filter((k) => !held.includes(k)));
  }

  /** Drop HOST's claims on KEYS (best effort: a claim left behind is taken over once stale). */
  private async release(host: string, keys: string[]): Promise<void> {
    for (const key of keys) {
      const fp = fingerprintOfKeyLine(key);
      const cur = this.claimOf(fp);
      if (cur?.value.host !== host) continue;
      await this.claims.delete(fp, { expectRevision: cur.revision }).catch((err: unknown) => {
        this.log.warn({ key: fp, host, err: (err as Error).message }, 'could not release a key claim; it is taken over once stale');
      });
    }
  }
}
