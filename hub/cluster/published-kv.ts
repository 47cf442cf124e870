// Published configurations shared by the hubs of a cluster.
//
//   <prefix>_published   KV bucket, one record per host: its version.json
//                        fields, the hub that deployed, and the hashes whose
//                        trees are kept. The record is THE commit point of a
//                        deploy at any hub, as version.json is on one hub.
//   <prefix>_configs     object store, one object per (host, hash): the tree
//                        as one archive (hub/publish/tree-archive.ts).
//
// A deploy at a hub uploads the tree first, then sets the record by
// compare-and-swap on the revision it read (a deploy that started from an
// older view cannot overwrite a newer one), then places the tree in its own
// jail. Every hub's mirror (published-mirror.ts) follows the records and
// rebuilds each tree in its own jail, verified by the content hash, so the
// SFTP jail keeps serving plain files from its own disk with all its checks.
import type { ObjectStore } from '@nats-io/obj';
import { BentoError } from '../../common/protocol/errors.js';
import { isHostName } from '../../common/protocol/names.js';
import type { Logger } from '../../common/platform/log.js';
import { HASH_RE, jailPaths, versionDir } from '../publish/layout.js';
import { place, retidy, rmTree, versionOf, type CommitInfo, type StagedHost } from '../publish/publish.js';
import { readVersionFile, type VersionFile } from '../publish/published.js';
import type { PublishedStore } from '../publish/published-store.js';
import { packTree } from '../publish/tree-archive.js';
import type { KeyedStore, StateBackend, Versioned } from '../store/types.js';
import type { ObjectVersions } from './object-version.js';
import { lstat } from 'node:fs/promises';

export const PUBLISHED_STORE = 'published';
export const CONFIGS_OBJECTS = 'configs';

export interface PublishedRecord {
  version: 1;
  hash: string;
  publishedAt: string;
  files: number;
  bytes: number;
  source: string;
  buildOk: boolean | null;
  /** The hub the deploy ran at. */
  hub: string;
  /** Hashes whose trees the object store keeps for this host, newest first (the current one first). */
  kept: string[];
}

export function isPublishedRecord(key: string, v: unknown): v is PublishedRecord {
  const r = v as Record<string, unknown> | null;
  return isHostName(key) && typeof r === 'object' && r !== null && r['version'] === 1
    && typeof r['hash'] === 'string' && HASH_RE.test(r['hash']) && typeof r['publishedAt'] === 'string'
    && typeof r['files'] === 'number' && typeof r['bytes'] === 'number' && typeof r['source'] === 'string'
    && (r['buildOk'] === null || typeof r['buildOk'] === 'boolean') && typeof r['hub'] === 'string'
    && Array.isArray(r['kept']) && r['kept'].every((h) => typeof h === 'string' && HASH_RE.test(h));
}

/** The object holding HOST's tree HASH. */
export function objectName(host: string, hash: string): string {
  return `${host}/${hash}`;
}

/** What a jail's version.json says for a record at REVISION. */
export function localVersion(e: Versioned<PublishedRecord>): VersionFile {
  const { kept: _kept, ...v } = e.value;
  return { ...v, revision: e.revision };
}

/** A ReadableStream over an async iterator, pulled as the consumer reads (no read-ahead). */
export function readable(it: AsyncIterator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const { done, value } = await it.next();
      if (done) c.close(); else c.enqueue(value);
    },
    async cancel() { await it.return?.(); },
  });
}

/** Does HOST's jail hold versions/HASH? (Only ever created by a rename of a complete, verified tree.) */
export async function hasTree(fleetDir: string, host: string, hash: string): Promise<boolean> {
  return (await lstat(versionDir(jailPaths(fleetDir, host), hash)).catch(() => null))?.isDirectory() === true;
}

export interface ClusterObjects {
  openKeyed: StateBackend['openKeyed'];
  openObjectStore(name: string): Promise<ObjectStore>;
  /** Compare-and-swap on object store NAME's objects (refresh a reused one, delete a known version). */
  objectVersions(name: string): ObjectVersions;
  /** KEY's last record in keyed store NAME at the stream's leader (not this hub's view, which may lag); null: none. */
  leaderValue(name: string, key: string): Promise<unknown>;
  readonly hubName: string;
}

export class KvPublishedStore implements PublishedStore {
  private constructor(
    readonly records: KeyedStore<PublishedRecord>,
    readonly objects: ObjectStore,
    private readonly versions: ObjectVersions,
    private readonly o: { fleetDir: string; hubName: string; log: Logger; leaderValue: ClusterObjects['leaderValue'] },
  ) {}

  static async open(c: ClusterObjects, o: { fleetDir: string; log: Logger }): Promise<KvPublishedStore> {
    const records = await c.openKeyed<PublishedRecord>(PUBLISHED_STORE, { accept: isPublishedRecord });
    try {
      return new KvPublishedStore(records, await c.openObjectStore(CONFIGS_OBJECTS), c.objectVersions(CONFIGS_OBJECTS), { ...o, hubName: c.hubName, leaderValue: (n, k) => c.leaderValue(n, k) });
    } catch (err) {
      await records.close();
      throw err;
    }
  }

  async current(host: string): Promise<VersionFile | null> {
    const e = this.records.entry(host);
    return e ? localVersion(e) : null;
  }

  async serves(host: string, hash: string): Promise<boolean> {
    return this.records.get(host)?.hash === hash;
  }

  async unchanged(staged: StagedHost, current: VersionFile, keepVersions: number): Promise<boolean> {
    const host = staged.source.host;
    const local = await readVersionFile(this.o.fleetDir, host);
    // The record names this content: its object must exist for the other hubs (a deploy that failed
    // after its record, or a record from before the sweep refused reused objects): stored again if not.
    await this.ensureStored(host, { hash: staged.hash, tree: staged.staging });
    if (local?.hash === current.hash && (local.revision ?? 0) >= (current.revision ?? 0) && await hasTree(this.o.fleetDir, host, current.hash)) {
      // Under the jail's lock, against version.json as it is then: this hub's mirror may be placing a
      // newer record right now, and tidying against LOCAL would delete the tree it just placed.
      await retidy(this.o.fleetDir, host, keepVersions);
      return false;
    }
    // This hub's jail lags (its mirror did not run yet, or the hub is down): the staged tree is that version.
    await place(this.o.fleetDir, host, { tree: staged.staging, version: current, keepVersions });
    return true;
  }

  async publish(staged: StagedHost, info: CommitInfo, before: VersionFile | null): Promise<VersionFile> {
    const host = staged.source.host;
    try {
      await this.upload(host, { hash: staged.hash, tree: staged.staging });
      const prev = before ? this.records.entry(host) : undefined;
      const prevKept = prev && prev.revision === before?.revision ? prev.value.kept : [];
      const kept = [staged.hash, ...prevKept.filter((h) => h !== staged.hash)].slice(0, Math.max(1, info.keepVersions));
      const rec: PublishedRecord = { ...versionOf(staged, info.buildOk), hub: this.o.hubName, kept };
      let revision: number;
      try {
        revision = await this.records.set(host, rec, { expectRevision: before?.revision ?? 0 });
      } catch (err) {
        throw this.refusal(host, err);
      }
      // A sweep that read the leader before the record was set may be deleting the object now: refresh it
      // again (exactly one of that delete and this refresh lands), and store it again if the delete won.
      const lost = await this.upload(host, { hash: staged.hash, tree: staged.staging }).then(() => null, (err: unknown) => err as Error);
      const v = await place(this.o.fleetDir, host, { tree: staged.staging, version: localVersion({ value: rec, revision }), keepVersions: info.keepVersions });
      await this.dropObjects(host, prevKept.filter((h) => !kept.includes(h)));
      if (lost) {
        const why = lost.cause instanceof Error ? lost.cause.message : lost.message; // not upload()'s "nothing published"
        throw new BentoError('CLUSTER_UNAVAILABLE', `${host}: published here, but its tree could not be confirmed in the cluster, so other hubs may not serve it (${why}); run deploy again`, { cause: lost });
      }
      return v;
    } catch (err) {
      await rmTree(staged.staging);
      throw err;
    }
  }

  /**
   * A hub joining the cluster serves HOST's version V (its version.json from
   * before, with no revision) and the cluster has no record of HOST: make V
   * the cluster's, as if deployed here, and stamp this jail with the record's
   * revision. Resolves false when the cluster has a record (it wins).
   */
  async adopt(host: string, v: VersionFile): Promise<boolean> {
    if (this.records.has(host)) return false;
    await this.upload(host, { hash: v.hash, tree: versionDir(jailPaths(this.o.fleetDir, host), v.hash) });
    const { revision: _r, hub: _h, ...plain } = v;
    const rec: PublishedRecord = { ...plain, version: 1, hub: this.o.hubName, kept: [v.hash] };
    let revision: number;
    try {
      revision = await this.records.set(host, rec, { expectRevision: 0 });
    } catch (err) {
      if (err instanceof BentoError && err.code === 'STATE_CONFLICT') return false;
      throw err;
    }
    // As in publish(): a sweep racing the record must not leave it naming a deleted object.
    await this.upload(host, { hash: v.hash, tree: versionDir(jailPaths(this.o.fleetDir, host), v.hash) }).catch((err: unknown) => {
      this.o.log.warn({ host, hash: v.hash, err: (err as Error).message }, 'adopted, but the tree could not be confirmed in the cluster; deploy the host again');
    });
    await place(this.o.fleetDir, host, { tree: null, version: localVersion({ value: rec, revision }), keepVersions: Number.MAX_SAFE_INTEGER });
    return true;
  }

  close(): Promise<void> {
    return this.records.close();
  }

  /**
   * The tree as object HOST/HASH. One already there (same name, same content:
   * a refused deploy's, a kept version deployed again) is reused, but
   * refreshed: its time is now, so a sweep judges it young, and a sweep that
   * scanned it before cannot delete it any more (object-version.ts). Stored
   * again when it is gone or changed meanwhile.
   */
  private async upload(host: string, t: { hash: string; tree: string }): Promise<void> {
    const name = objectName(host, t.hash);
    try {
      const have = await this.objects.info(name);
      if (have && !have.deleted && await this.versions.refresh(name)) return;
      await this.objects.put({ name, description: `${host} configuration ${t.hash}` }, readable(packTree(t.tree)[Symbol.asyncIterator]()));
    } catch (err) {
      if (err instanceof BentoError) throw err;
      throw new BentoError('CLUSTER_UNAVAILABLE', `${host}: cannot store the configuration in the cluster, nothing published: ${(err as Error).message}`, { cause: err });
    }
  }

  private refusal(host: string, err: unknown): BentoError {
    if (err instanceof BentoError && err.code === 'STATE_CONFLICT') {
      const now = this.records.get(host);
      return new BentoError('STATE_CONFLICT', `${host} was published at another hub meanwhile${now ? ` (${now.hash.slice(0, 12)} at ${now.hub})` : ''}; nothing published here, run deploy again`);
    }
    if (err instanceof BentoError && err.code === 'STATE_WRITE_FAILED') {
      return new BentoError('CLUSTER_UNAVAILABLE', `${host}: NATS did not acknowledge the publish in time; it may or may not be in effect, run deploy again (${err.message})`, { cause: err });
    }
    return err instanceof BentoError ? err : new BentoError('INTERNAL', (err as Error).message, { cause: err });
  }

  /** Store HOST/HASH if it is missing (no refresh: a record keeps it). Best effort: the deploy changes nothing else. */
  private async ensureStored(host: string, t: { hash: string; tree: string }): Promise<void> {
    try {
      const have = await this.objects.info(objectName(host, t.hash));
      if (have && !have.deleted) return;
      this.o.log.warn({ host, hash: t.hash }, 'the published record names a tree the cluster does not hold; storing it again');
      await this.upload(host, t);
    } catch (err) {
      this.o.log.warn({ host, hash: t.hash, err: (err as Error).message }, 'could not check the published tree in the cluster');
    }
  }

  /**
   * Old trees no record keeps any more (best effort: a later deploy tries
   * again only for what it drops). Only the version looked at, and only if
   * the record does not keep it by then: another hub may be reusing it. The
   * record is read at the stream's leader after the look, not in this hub's
   * view: a deploy at another hub that reused the tree (refreshing it after
   * its record, so after the look) may not be in the view yet, and the
   * object its record names was deleted (found by review;
   * cluster-content-sweep-reuse). A leader record this version cannot read
   * keeps everything, as in `cluster sweep`.
   */
  private async dropObjects(host: string, hashes: string[]): Promise<void> {
    for (const h of hashes) {
      const name = objectName(host, h);
      await (async () => {
        const have = await this.objects.info(name);
        if (!have || have.deleted || this.records.get(host)?.kept.includes(h)) return;
        const lead = await this.o.leaderValue(PUBLISHED_STORE, host);
        if (lead !== null && (!isPublishedRecord(host, lead) || lead.kept.includes(h) || lead.hash === h)) return;
        await this.versions.deleteScanned({ name, nuid: have.nuid, seq: have.revision, size: have.size, mtime: have.mtime });
      })().catch((err: unknown) => {
        this.o.log.warn({ host, hash: h, err: (err as Error).message }, 'could not delete an old configuration object');
      });
    }
  }
}
