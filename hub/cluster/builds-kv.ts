// Build records shared by the hubs of a cluster: the last real build of each
// host in a keyed store (NATS: the KV bucket `<prefix>_builds`), so
// `bento-hub build` at one hub and `trigger --prebuilt` or `deploy` at another
// agree on what was built. Reads come from the store's local view (a trigger
// never waits on NATS for it; while NATS is away it answers what it last saw).
// The building hub also keeps its own file copy (state/builds/NAME.json, next
// to the build's log), which `diff` there reads.
import { BentoError } from '../../common/protocol/errors.js';
import { isHostName } from '../../common/protocol/names.js';
import { writeBuildRecordFile, type BuildRecord } from '../publish/build.js';
import type { BuildRecords } from '../publish/build-records.js';
import type { KeyedStore, StateBackend } from '../store/types.js';

export const BUILDS_STORE = 'builds';

export function isBuildRecord(key: string, v: unknown): v is BuildRecord {
  const r = v as Record<string, unknown> | null;
  return isHostName(key) && typeof r === 'object' && r !== null && r['host'] === key
    && typeof r['hash'] === 'string' && r['dry'] === false && typeof r['ok'] === 'boolean'
    && (r['storePath'] === null || typeof r['storePath'] === 'string')
    && typeof r['at'] === 'string' && typeof r['tail'] === 'string' && typeof r['log'] === 'string'
    && (r['exitCode'] === null || typeof r['exitCode'] === 'number') && typeof r['durationMs'] === 'number';
}

export class KvBuildRecords implements BuildRecords {
  private constructor(
    private readonly store: KeyedStore<BuildRecord>,
    private readonly o: { fleetDir: string; hubName: string },
  ) {}

  static async open(backend: Pick<StateBackend, 'openKeyed'>, o: { fleetDir: string; hubName: string }): Promise<KvBuildRecords> {
    return new KvBuildRecords(await backend.openKeyed<BuildRecord>(BUILDS_STORE, { accept: isBuildRecord }), o);
  }

  async read(host: string): Promise<BuildRecord | null> {
    return this.store.get(host) ?? null;
  }

  /** This hub's file first (its log is here), then the cluster's record; a dry run stays local. */
  async write(rec: BuildRecord): Promise<void> {
    const mine: BuildRecord = { ...rec, hub: this.o.hubName };
    await writeBuildRecordFile(this.o.fleetDir, mine);
    if (rec.dry) return;
    try {
      await this.store.set(rec.host, mine);
    } catch (err) {
      const why = err instanceof BentoError ? `${err.message} [${err.code}]` : String(err);
      throw new BentoError('CLUSTER_UNAVAILABLE', `built, but the cluster did not record the build (other hubs cannot use it for --prebuilt or deploy): ${why}`, { cause: err });
    }
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
