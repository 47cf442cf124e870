// Path resolution and containment for the jail: from a client's path to the
// virtual node (vpath.ts), and from a node to the one real file or directory
// it may stand for, inside the host's own published version and nowhere else.
// Symlinks and special files below /config do not exist; opened files must
// really lie inside the version directory.
import { constants as C } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { Attributes, FileEntry } from 'ssh2';
import { printable } from '../../common/protocol/names.js';
import { HASH_RE, jailPaths, jailsDir } from '../publish/layout.js';
import { LOG_NAME_RE, parseVirtual, type VNode } from './vpath.js';
import { denied, dirAttrs, entry, failure, fileAttrs, missing, secs } from './replies.js';

export interface Snapshot {
  /** Real path of jails/NAME (no symlinks), or null when the jail does not exist yet. */
  jailRoot: string | null;
  /** version.json as published, or null when nothing is. */
  version: { raw: Buffer; hash: string; mtime: number; dir: string; lastChange: Buffer } | null;
}

/** Taken once per session: a session sees the version current when it first looked. */
export async function loadSnapshot(fleetDir: string, host: string): Promise<Snapshot> {
  const lexical = jailPaths(fleetDir, host).root;
  let realJails: string;
  try {
    realJails = await realpath(jailsDir(fleetDir));
  } catch {
    return { jailRoot: null, version: null };
  }
  const jailRoot = path.join(realJails, path.basename(lexical));
  const st = await lstat(jailRoot).catch(() => null);
  if (!st) return { jailRoot: null, version: null };
  if (!st.isDirectory()) throw failure('jail is not a directory');
  const raw = await readNoFollow(path.join(jailRoot, 'version.json'), 64 * 1024);
  if (!raw) return { jailRoot, version: null };
  let parsed: { hash?: unknown; publishedAt?: unknown };
  try {
    parsed = JSON.parse(raw.toString('utf8')) as typeof parsed;
  } catch {
    return { jailRoot, version: null };
  }
  if (typeof parsed.hash !== 'string' || !HASH_RE.test(parsed.hash)) return { jailRoot, version: null };
  const versions = path.join(jailRoot, 'versions');
  const dir = path.join(versions, parsed.hash);
  const [vs, ds] = await Promise.all([lstat(versions).catch(() => null), lstat(dir).catch(() => null)]);
  if (!vs?.isDirectory() || !ds?.isDirectory()) return { jailRoot, version: null };
  const at = typeof parsed.publishedAt === 'string' ? Date.parse(parsed.publishedAt) : NaN;
  const mtime = Math.floor((Number.isFinite(at) ? at : ds.mtimeMs) / 1000);
  const lastChange = Buffer.from(`${typeof parsed.publishedAt === 'string' ? parsed.publishedAt : new Date(mtime * 1000).toISOString()}\n`);
  return { jailRoot, version: { raw, hash: parsed.hash, mtime, dir, lastChange } };
}

/** A client's path as a node of the namespace; refused and unknown paths throw. */
export function parsePath(p: string): VNode {
  const n = parseVirtual(p);
  if (n.kind === 'denied') throw denied(`${n.why}: ${printable(p, 120)}`);
  if (n.kind === 'missing') throw missing();
  return n;
}

/** lstat each component below the version dir; symlinks and special files do not exist. */
export async function configEntry(snap: Snapshot, rel: string[]): Promise<{ abs: string; st: Stats; root: string }> {
  const v = snap.version;
  if (!v) throw missing();
  let abs = v.dir;
  let st = await lstat(abs).catch(() => null);
  if (!st?.isDirectory()) throw missing();
  for (const c of rel) {
    abs = path.join(abs, c);
    st = await lstat(abs).catch(() => null);
    if (!st || !(st.isDirectory() || st.isFile())) throw missing();
  }
  // (a file in the middle of the path fails the next lstat with ENOTDIR)
  return { abs, st: st!, root: v.dir };
}

export async function attrsOf(snap: Snapshot, n: VNode): Promise<Attributes> {
  switch (n.kind) {
    case 'root':
      return dirAttrs(0o755, snap.version?.mtime ?? 0);
    case 'meta': {
      const v = snap.version;
      if (!v) throw missing();
      const data = n.name === 'version.json' ? v.raw : v.lastChange;
      return fileAttrs(0o444, data.length, v.mtime);
    }
    case 'config': {
      const { st } = await configEntry(snap, n.rel);
      return st.isDirectory() ? dirAttrs(0o555, secs(st.mtimeMs)) : fileAttrs(st.mode & 0o111 ? 0o555 : 0o444, st.size, secs(st.mtimeMs));
    }
    case 'logs':
      return dirAttrs(0o300, snap.version?.mtime ?? 0);
    case 'log': {
      if (!snap.jailRoot || !LOG_NAME_RE.test(n.name)) throw missing();
      const st = await lstat(path.join(snap.jailRoot, 'logs', n.name)).catch(() => null);
      if (!st?.isFile()) throw missing();
      return fileAttrs(0o200, st.size, secs(st.mtimeMs));
    }
  }
}

/**
 * Open a file found by configEntry without following a symlink, check that
 * the opened descriptor is a regular file inside `root`, and hand it to `use`;
 * the file is closed again if the check or `use` throws.
 */
export async function openInside(abs: string, root: string, use: (fh: FileHandle, st: Stats) => void): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(abs, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch {
    throw missing();
  }
  try {
    const fst = await fh.stat();
    if (!fst.isFile() || !(await fdInside(fh, root))) throw missing();
    use(fh, fst);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** What OPENDIR lists: the fixed root, or a published directory (which must realpath to itself). */
export async function listDir(snap: Snapshot, n: VNode): Promise<FileEntry[]> {
  const entries: FileEntry[] = [];
  if (n.kind === 'root') {
    if (snap.version) {
      entries.push(entry('config', dirAttrs(0o555, snap.version.mtime)));
      entries.push(entry('last_change_date', fileAttrs(0o444, snap.version.lastChange.length, snap.version.mtime)));
      entries.push(entry('version.json', fileAttrs(0o444, snap.version.raw.length, snap.version.mtime)));
    }
    entries.push(entry('logs', dirAttrs(0o300, snap.version?.mtime ?? 0)));
  } else if (n.kind === 'logs' || n.kind === 'log') {
    throw denied('logs/ cannot be listed');
  } else if (n.kind === 'config') {
    const { abs, st, root } = await configEntry(snap, n.rel);
    if (!st.isDirectory()) throw failure('not a directory');
    const real = await realpath(abs).catch(() => '');
    if (real !== abs || !(real === root || real.startsWith(`${root}/`))) throw missing();
    for (const name of (await readdir(abs)).sort()) {
      const est = await lstat(path.join(abs, name)).catch(() => null);
      if (!est) continue;
      if (est.isDirectory()) entries.push(entry(name, dirAttrs(0o555, secs(est.mtimeMs))));
      else if (est.isFile()) entries.push(entry(name, fileAttrs(est.mode & 0o111 ? 0o555 : 0o444, est.size, secs(est.mtimeMs))));
      // symlinks and special files are not part of a published tree: not listed
    }
  } else {
    throw failure('not a directory');
  }
  return entries;
}

/** Read a small file without following a symlink at its last component; null if absent. */
async function readNoFollow(file: string, max: number): Promise<Buffer | null> {
  let fh: FileHandle;
  try {
    fh = await open(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > max) return null;
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** The opened descriptor really is inside dir (Linux: /proc/self/fd). */
async function fdInside(fh: FileHandle, dir: string): Promise<boolean> {
  const real = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => '');
  return real.startsWith(`${dir}/`);
}
