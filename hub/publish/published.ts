// The currently published version of a host: what its jail serves right now.
// Other parts of the hub (status) compare it with the hash the agent says it
// applied (hello.configHash). version.json is replaced by an atomic rename,
// so a reader sees the old or the new version, never a mix.
import { readFile } from 'node:fs/promises';
import { HASH_RE, jailPaths } from './layout.js';

export interface PublishedVersion {
  /** Content hash (64 hex) of the published tree: paths, exec bits and contents. */
  hash: string;
  /** ISO time of the publish that made this version current. */
  publishedAt: string;
}

/** Everything version.json holds (readPublished returns the stable subset). */
export interface VersionFile extends PublishedVersion {
  version: 1;
  files: number;
  bytes: number;
  /** Source directory under hosts/ it was published from. */
  source: string;
  /** Result of the build that gated the publish; false only with --force. */
  buildOk: boolean | null;
  /** In a cluster: the revision of the shared record this version came from (a jail never goes back to a lower one). */
  revision?: number;
  /** In a cluster: the hub the deploy ran at. */
  hub?: string;
}

export async function readVersionFile(fleetDir: string, host: string): Promise<VersionFile | null> {
  let text: string;
  try {
    text = await readFile(jailPaths(fleetDir, host).versionFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
  try {
    const v = JSON.parse(text) as VersionFile;
    if (typeof v.hash !== 'string' || !HASH_RE.test(v.hash) || typeof v.publishedAt !== 'string') return null;
    return v;
  } catch {
    return null;
  }
}

/** The currently published version of a host, or null if nothing was ever published. */
export async function readPublished(fleetDir: string, host: string): Promise<{ hash: string; publishedAt: string } | null> {
  const v = await readVersionFile(fleetDir, host);
  return v ? { hash: v.hash, publishedAt: v.publishedAt } : null;
}
