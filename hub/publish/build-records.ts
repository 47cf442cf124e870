// Where the last real build of each host is recorded: `deploy` reuses a
// successful build of the same content, `trigger --prebuilt` switches a host
// to its store path, `diff` compares with it. The embedded hub keeps one file
// per host (state/builds/NAME.json); a cluster keeps them in a KV bucket
// (hub/cluster/builds-kv.ts), so a build at any hub serves a trigger at any
// other. Dry runs are only ever kept in files (NAME.dry.json): they are never
// what --prebuilt or deploy use.
import { readBuildRecord, writeBuildRecordFile, type BuildRecord } from './build.js';

export interface BuildRecords {
  /** The last real (non-dry) build of HOST, or null. */
  read(host: string): Promise<BuildRecord | null>;
  /** Record a build; resolves once it is durable (a dry run only locally). */
  write(rec: BuildRecord): Promise<void>;
}

/** The embedded hub's build records: state/builds/NAME.json. */
export function fileBuildRecords(fleetDir: string): BuildRecords {
  return {
    read: (host) => readBuildRecord(fleetDir, host),
    write: (rec) => writeBuildRecordFile(fleetDir, rec),
  };
}
