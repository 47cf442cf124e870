// Uploaded logs shared by the hubs of a cluster (hub/sftp/log-archive.ts):
//
//   <prefix>_logs       KV bucket, one manifest per host: name -> size, when,
//                       and which hub took the upload. Read and changed by key
//                       on demand (kv-direct.ts), never held whole by a hub.
//   <prefix>_logfiles   object store, one object per log: HOST/NAME.
//
// A log goes in as: object first, then the manifest entry by compare-and-swap
// (two hubs storing logs of one host at once both land); the manifest is the
// list `logs HOST` shows at every hub. The host's quota is enforced on the
// manifest, so it holds across hubs: a store that would pass the limits drops
// the host's oldest logs in the same manifest update, and only then their
// objects. A log is streamed from the jail into the object store in chunks,
// never read whole (found by review: readFile held a whole log in memory at
// every retry, and failed for good on one over 2 GiB).
import { open, type FileHandle } from 'node:fs/promises';
import type { ObjectStore } from '@nats-io/obj';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { decodeLog, listLogs, parseLogName, readLog, sortLogs, type LogInfo, type LogReader } from '../publish/logs.js';
import type { LogArchive, LogLimits } from '../sftp/log-archive.js';
import { LOG_NAME_RE } from '../sftp/vpath.js';
import { DirectKv } from './kv-direct.js';
import type { BucketHandle } from './nats-backend.js';
import type { ObjectVersions } from './object-version.js';

export const LOGS_STORE = 'logs';
export const LOG_OBJECTS = 'logfiles';

export interface LogManifestEntry { size: number; at: string; hub: string }
export interface LogManifest { logs: Record<string, LogManifestEntry> }

export function isLogManifest(_key: string, v: unknown): v is LogManifest {
  const logs = (v as LogManifest | null)?.logs;
  if (typeof logs !== 'object' || logs === null || Array.isArray(logs)) return false;
  return Object.entries(logs).every(([n, e]) => LOG_NAME_RE.test(n) && typeof e === 'object' && e !== null
    && Number.isSafeInteger(e.size) && e.size >= 0 && typeof e.at === 'string' && typeof e.hub === 'string');
}

function logObject(host: string, name: string): string {
  return `${host}/${name}`;
}

export interface LogArchiveSource {
  openBucket(name: string): Promise<BucketHandle>;
  openObjectStore(name: string): Promise<ObjectStore>;
  /** Compare-and-swap on object store NAME's objects (a stored log refreshed after its manifest entry). */
  objectVersions(name: string): ObjectVersions;
  readonly hubName: string;
}

export class KvLogArchive implements LogArchive {
  private constructor(
    private readonly manifests: DirectKv<LogManifest>,
    readonly objects: ObjectStore,
    private readonly versions: ObjectVersions,
    private readonly o: { hubName: string; log: Logger },
  ) {}

  static async open(c: LogArchiveSource, o: { log: Logger }): Promise<KvLogArchive> {
    const bucket = await c.openBucket(LOGS_STORE);
    return new KvLogArchive(new DirectKv(bucket, isLogManifest), await c.openObjectStore(LOG_OBJECTS), c.objectVersions(LOG_OBJECTS), { hubName: c.hubName, log: o.log });
  }

  /** HOST's manifest entries (empty when it has none). */
  async entries(host: string): Promise<Record<string, LogManifestEntry>> {
    return (await this.manifests.get(host))?.value.logs ?? {};
  }

  async list(host: string): Promise<Map<string, number>> {
    return new Map(Object.entries(await this.entries(host)).map(([n, e]) => [n, e.size]));
  }

  async remove(host: string, names: string[]): Promise<void> {
    const gone = new Set(names);
    await this.manifests.update(host, (cur) => {
      if (!cur || !names.some((n) => n in cur.logs)) return undefined;
      return { logs: Object.fromEntries(Object.entries(cur.logs).filter(([n]) => !gone.has(n))) };
    });
    await this.dropObjects(host, names);
  }

  async store(host: string, name: string, file: string, limits: LogLimits): Promise<void> {
    if (!LOG_NAME_RE.test(name)) throw new BentoError('INTERNAL', `not a log name: ${name.slice(0, 80)}`);
    if (name in (await this.entries(host))) return;
    const fh = await open(file, 'r'); // ENOENT: pruned meanwhile, the caller drops it
    const size = await this.put(host, name, fh);
    let dropped: string[] = [];
    let added = false;
    await this.manifests.update(host, (cur) => {
      dropped = [];
      added = false; // run again on a newer manifest when another hub's update won
      const logs = { ...(cur?.logs ?? {}) };
      if (name in logs) return undefined;
      added = true;
      logs[name] = { size, at: new Date().toISOString(), hub: this.o.hubName };
      // Oldest first, by name (names start with the job's time), the new one included: a late
      // upload of an old log does not push out newer ones.
      const older = Object.keys(logs).sort();
      let bytes = Object.values(logs).reduce((a, e) => a + e.size, 0);
      while ((bytes > limits.quotaBytes || Object.keys(logs).length > limits.maxFiles) && older.length > 0) {
        const n = older.shift()!;
        bytes -= logs[n]!.size;
        delete logs[n];
        dropped.push(n);
      }
      return { logs };
    });
    if (dropped.length) {
      this.o.log.info({ host, dropped }, 'dropped a host\'s oldest logs in the cluster to keep it within its quota');
      await this.dropObjects(host, dropped);
    }
    if (added && !dropped.includes(name)) await this.confirm(host, name, file);
  }

  /** Stream the jail's file FH into the object store as HOST/NAME; its size. */
  private async put(host: string, name: string, fh: FileHandle): Promise<number> {
    const read: { err: Error | null } = { err: null };
    try {
      return (await this.objects.put({ name: logObject(host, name) }, fileStream(fh, read))).size;
    } catch (err) {
      // The jail's file failed (not NATS): that log's own error, never "the cluster is away".
      if (read.err) throw read.err;
      throw new BentoError('CLUSTER_UNAVAILABLE', `cannot store ${host}'s log ${name} in the cluster: ${(err as Error).message}`, { cause: err });
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /**
   * After the manifest entry landed: a `cluster sweep` that read the manifest
   * before it (this hub stalled longer than --min-age between object and
   * entry) may be deleting the object now. Refresh it: of that delete and
   * this refresh exactly one lands (both are compare-and-swaps on the
   * object's metadata), and if the delete did, store it again from the jail's
   * file. Best effort: a failure here is logged, the entry stays (as the
   * deploy's refresh after its record, published-kv.ts).
   */
  private async confirm(host: string, name: string, file: string): Promise<void> {
    try {
      if (await this.versions.refresh(logObject(host, name))) return;
      this.o.log.warn({ host, log: name }, 'a log\'s object was removed by a sweep as its manifest entry landed; storing it again');
      await this.put(host, name, await open(file, 'r'));
    } catch (err) {
      this.o.log.warn({ host, log: name, err: (err as Error).message }, 'could not confirm a stored log\'s object in the cluster');
    }
  }

  async read(host: string, name: string): Promise<Buffer | null> {
    if (!(name in (await this.entries(host)))) return null;
    try {
      const data = await this.objects.getBlob(logObject(host, name));
      return data ? Buffer.from(data) : null;
    } catch (err) {
      throw new BentoError('CLUSTER_UNAVAILABLE', `cannot read ${host}'s log ${name} from the cluster: ${(err as Error).message}`, { cause: err });
    }
  }

  private async dropObjects(host: string, names: string[]): Promise<void> {
    for (const n of names) {
      await this.objects.delete(logObject(host, n)).catch((err: unknown) => {
        this.o.log.warn({ host, log: n, err: (err as Error).message }, 'could not delete a dropped log\'s object');
      });
    }
  }
}

/** FH's bytes, 128 KiB at a time as the object store asks for them; a read error is kept in READ.err. */
function fileStream(fh: FileHandle, read: { err: Error | null }): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        const buf = Buffer.allocUnsafe(128 * 1024);
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) ctl.close();
        else ctl.enqueue(buf.subarray(0, bytesRead));
      } catch (err) {
        read.err = err as Error;
        ctl.error(err);
      }
    },
  });
}

/**
 * `bento-hub logs` and the dashboard in a cluster: the archive's logs of a
 * host, plus those still in this hub's jail (an upload in progress, or one not
 * moved yet while NATS was away). With onUnavailable (the running hub's
 * dashboard), a list while NATS does not answer shows this hub's jail and
 * calls it, rather than failing the host's page.
 */
export function clusterLogReader(fleetDir: string, archive: KvLogArchive, onUnavailable?: (err: BentoError) => void): LogReader {
  return {
    async list(host) {
      const local = await listLogs(fleetDir, host);
      const have = new Set(local.map((l) => l.name));
      let entries: Record<string, LogManifestEntry>;
      try {
        entries = await archive.entries(host);
      } catch (err) {
        if (!onUnavailable || !(err instanceof BentoError && err.code === 'CLUSTER_UNAVAILABLE')) throw err;
        onUnavailable(err);
        return local;
      }
      const remote: LogInfo[] = Object.entries(entries).filter(([n]) => !have.has(n))
        .map(([n, e]) => ({ ...parseLogName(n), size: e.size, mtime: e.at }));
      return sortLogs([...local, ...remote]);
    },
    async read(host, name) {
      if ((await listLogs(fleetDir, host)).some((l) => l.name === name)) return readLog(fleetDir, host, name);
      const raw = await archive.read(host, name);
      return raw ? decodeLog(raw) : null;
    },
  };
}
