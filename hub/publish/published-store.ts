// Where `deploy` publishes to. The embedded hub: the host's jail under
// FLEET/jails/NAME (publish.ts, the atomic rename of version.json). A cluster:
// a shared record per host plus the tree as one object, which every hub
// mirrors into its own jail (hub/cluster/published-kv.ts, published-mirror.ts),
// so the SFTP jail serves files from its own disk in both cases and its
// checks stay exactly as they are.
import { commit, isPublished, retidy, type CommitInfo, type StagedHost } from './publish.js';
import { readVersionFile, type VersionFile } from './published.js';

export interface PublishedStore {
  /** What HOST is served now (for a cluster: the shared record, with its revision), or null. */
  current(host: string): Promise<VersionFile | null>;
  /** Is HASH what HOST is served now (and, on the embedded hub, is its tree in place)? */
  serves(host: string, hash: string): Promise<boolean>;
  /**
   * STAGED is what CURRENT already serves (serves() said so): make sure this hub's
   * jail is tidy and complete. Returns true if it used the staged tree
   * (the caller must then not discard it).
   */
  unchanged(staged: StagedHost, current: VersionFile, keepVersions: number): Promise<boolean>;
  /**
   * Make STAGED the served version of its host; its tree is consumed. BEFORE
   * is what current() said when the deploy looked: a cluster refuses with
   * STATE_CONFLICT if another hub published the host since.
   */
  publish(staged: StagedHost, info: CommitInfo, before: VersionFile | null): Promise<VersionFile>;
}

/** The embedded hub's published configurations: the jails under FLEET/jails/. */
export function filePublishedStore(fleetDir: string): PublishedStore {
  return {
    current: (host) => readVersionFile(fleetDir, host),
    serves: (host, hash) => isPublished(fleetDir, host, hash),
    async unchanged(staged, _current, keepVersions) {
      // Against version.json under the lock, not CURRENT: another deploy may have committed since.
      await retidy(fleetDir, staged.source.host, keepVersions);
      return false;
    },
    publish: (staged, info) => commit(fleetDir, staged, info),
  };
}
