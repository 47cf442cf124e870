// Atomic publish of one host's configuration into its jail.
//
//   1. stage:  copy hosts/... into jails/NAME/.staging-PID-RAND (same filesystem),
//              dereferencing symlinks, fsync every file; hash it.
//   2. place:  rename the staging dir to versions/HASH (or drop it when that
//              immutable version already exists).
//   3. commit: replace version.json by an atomic rename (fsync'd). This single
//              rename is the moment the new version becomes visible.
//   4. tidy:   repoint the `config` symlink, rewrite last_change_date, drop
//              old versions beyond publish.keepVersions.
//
// A deploy killed at any point leaves version.json naming a complete tree:
// the old one before step 3, the new one after. Leftover staging dirs of dead
// deploys are removed by the next deploy of that host.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readlink, rename, rm, stat, symlink, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../common/platform/atomic.js';
import { hashTree, TreeError } from '../../common/platform/tree-hash.js';
import { BentoError } from '../../common/protocol/errors.js';
import { withLock } from '../fleet/lock.js';
import { jailPaths, versionDir, HASH_RE } from './layout.js';
import { readVersionFile, type VersionFile } from './published.js';
import { snapshotTree } from './snapshot.js';
import type { HostSource } from './sources.js';
import { processAlive as alive } from '../../common/platform/process.js';

export interface StagedHost {
  source: HostSource;
  staging: string;
  hash: string;
  files: number;
  bytes: number;
}

const STAGING_PREFIX = '.staging-';

export async function ensureJail(fleetDir: string, host: string): Promise<void> {
  const j = jailPaths(fleetDir, host);
  await mkdir(j.root, { recursive: true, mode: 0o755 });
  await mkdir(j.versionsDir, { mode: 0o755 }).catch(ignoreExists);
  await mkdir(j.logsDir, { mode: 0o700 }).catch(ignoreExists);
}

/** Snapshot + hash one host's source into its jail's staging area. */
export async function stageHost(fleetDir: string, source: HostSource, parent?: string): Promise<StagedHost> {
  let dir = parent;
  if (!dir) {
    await ensureJail(fleetDir, source.host);
    await removeDeadStaging(fleetDir, source.host);
    dir = jailPaths(fleetDir, source.host).root;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const staging = path.join(dir, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await snapshotTree(source.dir, staging, fleetDir, source.label);
    const t = await hashTree(staging);
    return { source, staging, hash: t.hash, files: t.files, bytes: t.bytes };
  } catch (err) {
    await rmTree(staging);
    if (err instanceof TreeError) throw new BentoError('PUBLISH_REFUSED', `${source.label}/${err.relPath}: ${err.message}`);
    throw err;
  }
}

export async function discard(staged: StagedHost): Promise<void> {
  await rmTree(staged.staging);
}

/** Is `hash` what this host serves now, with its tree in place? */
export async function isPublished(fleetDir: string, host: string, hash: string): Promise<boolean> {
  const v = await readVersionFile(fleetDir, host);
  if (v?.hash !== hash) return false;
  const st = await lstat(versionDir(jailPaths(fleetDir, host), hash)).catch(() => null);
  return st?.isDirectory() === true;
}

export interface CommitInfo {
  buildOk: boolean | null;
  keepVersions: number;
}

/** The version.json a publish of STAGED writes. */
export function versionOf(staged: StagedHost, buildOk: boolean | null): VersionFile {
  return {
    version: 1, hash: staged.hash, publishedAt: new Date().toISOString(), files: staged.files, bytes: staged.bytes,
    source: staged.source.label, buildOk,
  };
}

/** Steps 2-4 under the host's lock. Returns the new version.json. */
export async function commit(fleetDir: string, staged: StagedHost, info: CommitInfo): Promise<VersionFile> {
  return place(fleetDir, staged.source.host, { tree: staged.staging, version: versionOf(staged, info.buildOk), keepVersions: info.keepVersions });
}

export interface Placement {
  /**
   * A complete tree on the jail's filesystem whose content hash is
   * version.hash (consumed: renamed into place or removed); null when
   * versions/HASH is known to be in place already.
   */
  tree: string | null;
  version: VersionFile;
  keepVersions: number;
}

/**
 * Steps 2-4 for any complete tree: place it as versions/HASH, then commit
 * version.json. A version carrying a cluster revision never replaces one with
 * a higher revision (the mirror and a deploy at this hub may race); then the
 * jail's current version.json is returned and the tree dropped.
 */
export async function place(fleetDir: string, host: string, p: Placement): Promise<VersionFile> {
  const j = jailPaths(fleetDir, host);
  await ensureJail(fleetDir, host);
  return withJailLock(fleetDir, host, async () => {
    const current = await readVersionFile(fleetDir, host);
    if (p.version.revision !== undefined && (current?.revision ?? 0) > p.version.revision) {
      if (p.tree) await rmTree(p.tree);
      return current!;
    }
    const dest = versionDir(j, p.version.hash);
    const existing = await lstat(dest).catch(() => null);
    if (existing?.isDirectory()) {
      if (p.tree) await rmTree(p.tree);
      const now = new Date();
      await utimes(dest, now, now); // most recently used: kept by the GC
    } else {
      if (!p.tree) throw new BentoError('INTERNAL', `${host}: versions/${p.version.hash} is not in place`);
      if (existing) await rm(dest, { force: true });
      await rename(p.tree, dest);
    }
    await writeJsonAtomic(j.versionFile, p.version, { mode: 0o644 }); // <- the commit point
    await tidy(fleetDir, host, p.version, p.keepVersions);
    return p.version;
  });
}

/**
 * Step 4 alone, for a deploy that changed nothing: under the jail's lock and
 * against version.json as it is then. A deploy or mirror placing another
 * version may have committed since the caller looked; tidying against the
 * caller's older idea would point `config` back and delete the tree
 * version.json now names. Resolves to that version.json (null: none).
 */
export async function retidy(fleetDir: string, host: string, keepVersions: number): Promise<VersionFile | null> {
  await ensureJail(fleetDir, host);
  return withJailLock(fleetDir, host, async () => {
    const v = await readVersionFile(fleetDir, host);
    if (v) await tidy(fleetDir, host, v, keepVersions);
    return v;
  });
}

/** FN holding HOST's jail lock: every change of version.json, `config` and versions/ takes it. */
function withJailLock<T>(fleetDir: string, host: string, fn: () => Promise<T>): Promise<T> {
  return withLock(path.join(jailPaths(fleetDir, host).root, '.lock'), fn, 120_000);
}

/** A new staging directory name in HOST's jail (same filesystem as versions/, removed by the next deploy if its process died). */
export async function newStaging(fleetDir: string, host: string): Promise<string> {
  await ensureJail(fleetDir, host);
  return path.join(jailPaths(fleetDir, host).root, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Bring config symlink and last_change_date in line with version.json; drop old versions. Only ever under the jail's lock (place, retidy). */
async function tidy(fleetDir: string, host: string, v: Pick<VersionFile, 'hash' | 'publishedAt'>, keepVersions: number): Promise<void> {
  const j = jailPaths(fleetDir, host);
  const target = `versions/${v.hash}`;
  const current = await readlinkOrNull(j.configLink);
  if (current !== target) {
    const tmp = path.join(j.root, `.config-${randomBytes(4).toString('hex')}`);
    await symlink(target, tmp);
    await rename(tmp, j.configLink).catch(async (err: unknown) => {
      await unlink(tmp).catch(() => undefined);
      throw err;
    });
  }
  const stamp = `${v.publishedAt}\n`;
  const st = await stat(j.lastChange).catch(() => null);
  if (!st || st.size !== stamp.length) await writeFileAtomic(j.lastChange, stamp, { mode: 0o644 });
  await gcVersions(fleetDir, host, v.hash, keepVersions);
}

async function gcVersions(fleetDir: string, host: string, current: string, keep: number): Promise<void> {
  const j = jailPaths(fleetDir, host);
  const dirs: Array<{ name: string; mtime: number }> = [];
  for (const name of await readdir(j.versionsDir).catch(() => [] as string[])) {
    if (!HASH_RE.test(name) || name === current) continue;
    const st = await lstat(path.join(j.versionsDir, name)).catch(() => null);
    if (st) dirs.push({ name, mtime: st.mtimeMs });
  }
  dirs.sort((a, b) => b.mtime - a.mtime);
  for (const d of dirs.slice(Math.max(0, keep - 1))) await rmTree(path.join(j.versionsDir, d.name));
}

/** Staging dirs whose deploy process is gone (killed mid-publish). */
async function removeDeadStaging(fleetDir: string, host: string): Promise<void> {
  const j = jailPaths(fleetDir, host);
  for (const name of await readdir(j.root).catch(() => [] as string[])) {
    if (!name.startsWith(STAGING_PREFIX) && !name.startsWith('.config-')) continue;
    const pid = Number(name.slice(STAGING_PREFIX.length).split('-')[0]);
    if (name.startsWith(STAGING_PREFIX) && Number.isInteger(pid) && pid > 0 && alive(pid)) continue;
    await rmTree(path.join(j.root, name));
  }
}

async function readlinkOrNull(p: string): Promise<string | null> {
  return readlink(p).catch(() => null);
}

/** rm -rf (published trees keep their directories 0755, so this needs no chmod). */
export async function rmTree(p: string): Promise<void> {
  await rm(p, { recursive: true, force: true });
}

function ignoreExists(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EEXIST') throw err;
}
