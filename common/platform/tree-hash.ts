// The content hash of a configuration tree, computed the same way by the hub
// (publish) and the agent (verify after download), so it is reproducible:
// it covers every directory and file path (relative, sorted by UTF-8 bytes),
// each file's exec bit and size, and the SHA-256 of its contents. Owners,
// times and other mode bits are deliberately left out: they differ between
// the hub, an sftp download and a fresh checkout without changing the config.
//
//   sha256( "bento-tree-v1\n" + for each entry in order:
//             'd "rel/dir"\n'   or   'f x|- SIZE SHA256HEX "rel/file"\n' )
//
// Paths are JSON-quoted, so no file name can forge a line. A tree may only
// hold directories and regular files: a symlink or a special file is an error
// (publish dereferences symlinks before hashing; downloads never create them).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

export interface TreeEntry {
  /** Relative path with "/" separators; never empty, never starts with "/". */
  path: string;
  type: 'dir' | 'file';
  exec: boolean;
  size: number;
  /** Hex SHA-256 of the contents ("" for directories). */
  sha256: string;
}

export interface TreeHash {
  hash: string;
  files: number;
  bytes: number;
  entries: TreeEntry[];
}

export interface TreeLimits {
  maxFiles?: number;
  maxBytes?: number;
}

export class TreeError extends Error {
  constructor(message: string, readonly relPath: string) {
    super(message);
    this.name = 'TreeError';
  }
}

export function hashEntries(entries: TreeEntry[]): string {
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const h = createHash('sha256').update('bento-tree-v1\n');
  for (const e of sorted) {
    if (e.type === 'dir') h.update(`d ${JSON.stringify(e.path)}\n`);
    else h.update(`f ${e.exec ? 'x' : '-'} ${e.size} ${e.sha256} ${JSON.stringify(e.path)}\n`);
  }
  return h.digest('hex');
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    const s = createReadStream(file);
    s.on('data', (c) => h.update(c));
    s.on('error', reject);
    s.on('end', () => resolve(h.digest('hex')));
  });
}

/** Hash a directory tree on disk. Throws TreeError for symlinks, special files or limits. */
export async function hashTree(root: string, limits: TreeLimits = {}): Promise<TreeHash> {
  const maxFiles = limits.maxFiles ?? 100_000;
  const maxBytes = limits.maxBytes ?? 2 ** 40;
  const entries: TreeEntry[] = [];
  let bytes = 0;
  let files = 0;
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const abs = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(abs);
      if (st.isDirectory()) {
        entries.push({ path: r, type: 'dir', exec: false, size: 0, sha256: '' });
        await walk(abs, r);
      } else if (st.isFile()) {
        files++;
        bytes += st.size;
        if (files > maxFiles) throw new TreeError(`more than ${maxFiles} files`, r);
        if (bytes > maxBytes) throw new TreeError(`more than ${maxBytes} bytes`, r);
        entries.push({ path: r, type: 'file', exec: (st.mode & 0o111) !== 0, size: st.size, sha256: await sha256File(abs) });
      } else {
        throw new TreeError(`${st.isSymbolicLink() ? 'symlink' : 'special file'} in a configuration tree`, r);
      }
    }
  };
  await walk(root, '');
  return { hash: hashEntries(entries), files, bytes, entries };
}
