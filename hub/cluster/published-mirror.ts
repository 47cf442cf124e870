// Each hub's copy of the cluster's published configurations: follows the
// `published` records (published-kv.ts) and makes this hub's jail serve what
// each record says, the same way a deploy on one hub does (hub/publish/
// publish.ts place(): versions/HASH by rename, then version.json by one atomic
// rename), so the SFTP jail and its checks are unchanged.
//
// A tree comes from the object store into a staging directory of the host's
// jail, is rebuilt by the archive reader (which refuses any path trick), and
// is put in place only if its content hash is the record's hash. A version.json
// carries the record's revision, and the jail never goes back to a lower one,
// so a slow mirror cannot undo a newer deploy made at this hub.
//
// Bounded: one queue of host names (a record changing ten times while a host
// waits is synced once, at its newest), CONCURRENCY syncs at a time. While
// NATS is unreachable the jail keeps serving what was mirrored last; failed
// hosts are tried again every retryMs.
import type { ObjectStore } from '@nats-io/obj';
import { BentoError } from '../../common/protocol/errors.js';
import { hashTree } from '../../common/platform/tree-hash.js';
import type { Logger } from '../../common/platform/log.js';
import { newStaging, place, rmTree } from '../publish/publish.js';
import { readVersionFile } from '../publish/published.js';
import { unpackTree } from '../publish/tree-archive.js';
import type { KeyedStore } from '../store/types.js';
import { hasTree, localVersion, objectName, type PublishedRecord } from './published-kv.js';

const CONCURRENCY = 2;
const RETRY_MS = 5000;

export interface MirrorOptions {
  records: KeyedStore<PublishedRecord>;
  objects: ObjectStore;
  fleetDir: string;
  keepVersions: number;
  log: Logger;
  retryMs?: number;
}

export class PublishedMirror {
  private readonly queue = new Set<string>();
  private readonly retry = new Map<string, NodeJS.Timeout>();
  private running = 0;
  private closed = false;
  private unwatch: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];
  private readonly work = new Set<Promise<void>>();

  constructor(private readonly o: MirrorOptions) {}

  /** Follow the records; every host already published is checked once. */
  start(): void {
    this.unwatch = this.o.records.watch((c) => { if (c.op === 'set') this.schedule(c.key); });
    for (const host of this.o.records.keys()) this.schedule(host);
  }

  /** Resolves once nothing is queued or being synced (tests, and stop). */
  idle(): Promise<void> {
    if (this.queue.size === 0 && this.running === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unwatch?.();
    for (const t of this.retry.values()) clearTimeout(t);
    this.retry.clear();
    this.queue.clear();
    await Promise.allSettled([...this.work]);
  }

  private schedule(host: string): void {
    if (this.closed) return;
    const t = this.retry.get(host);
    if (t) { clearTimeout(t); this.retry.delete(host); }
    this.queue.add(host);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.running < CONCURRENCY && this.queue.size > 0) {
      const host = this.queue.values().next().value as string;
      this.queue.delete(host);
      this.running++;
      const p = this.sync(host).catch((err: unknown) => {
        if (this.closed) return;
        this.o.log.warn({ host, err: (err as Error).message }, 'could not mirror the published configuration; the jail serves the previous one, trying again');
        this.retry.set(host, setTimeout(() => { this.retry.delete(host); this.schedule(host); }, this.o.retryMs ?? RETRY_MS).unref());
      }).finally(() => {
        this.running--;
        this.work.delete(p);
        this.pump();
        if (this.queue.size === 0 && this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
      this.work.add(p);
    }
  }

  /** Make HOST's jail serve its newest record. */
  private async sync(host: string): Promise<void> {
    const e = this.o.records.entry(host);
    if (!e) return;
    const fleetDir = this.o.fleetDir;
    const local = await readVersionFile(fleetDir, host);
    // In sync only if the tree is there too: a jail whose versions/HASH went missing (an old unlocked
    // tidy, a hand edit) serves nothing, and is repaired here like a jail that lags.
    if (local?.hash === e.value.hash && (local.revision ?? 0) >= e.revision && await hasTree(fleetDir, host, e.value.hash)) return;
    const version = localVersion(e);
    const t0 = Date.now();
    if (await hasTree(fleetDir, host, e.value.hash)) {
      await place(fleetDir, host, { tree: null, version, keepVersions: this.o.keepVersions });
    } else {
      const staging = await this.download(host, e.value.hash);
      await place(fleetDir, host, { tree: staging, version, keepVersions: this.o.keepVersions });
    }
    this.o.log.info({ host, hash: e.value.hash, revision: e.revision, from: e.value.hub, ms: Date.now() - t0 }, 'mirrored a published configuration');
  }

  /** The tree of HOST/HASH, rebuilt in a staging directory of HOST's jail and verified; the caller places it. */
  private async download(host: string, hash: string): Promise<string> {
    const staging = await newStaging(this.o.fleetDir, host);
    try {
      const obj = await this.o.objects.get(objectName(host, hash));
      if (!obj) throw new BentoError('NOT_PUBLISHED', `the cluster has no tree ${hash.slice(0, 12)} for ${host} (the record names it: a deploy in progress, or it was removed)`);
      // Settled here so a failed read (the stream cancelled below) is never an unhandled rejection.
      const failed = obj.error.then((e) => e, (e: unknown) => e as Error);
      const reader = obj.data.getReader();
      const chunks = async function* (): AsyncGenerator<Uint8Array> {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          yield value;
        }
      };
      try {
        await unpackTree(chunks(), staging);
      } finally {
        await reader.cancel().catch(() => undefined);
      }
      const err = await failed;
      if (err) throw err;
      const got = (await hashTree(staging)).hash;
      if (got !== hash) throw new BentoError('HASH_MISMATCH', `${host}: the tree from the cluster hashes to ${got.slice(0, 12)}, its record says ${hash.slice(0, 12)}; not served`);
      return staging;
    } catch (err) {
      await rmTree(staging);
      throw err;
    }
  }
}
