// Copy one host's source directory into a staging directory, dereferencing
// symlinks, so every host gets a self-contained tree (upstream's
// `utils -> ../../utils` works). A symlink may point anywhere inside the
// fleet directory EXCEPT the hub's own files (keys, registry, state, jails):
// one pointing outside, into those, dangling, or looping is refused with a
// message naming it. Special files are refused too. Copies get normalized
// modes (0444, or 0555 with an exec bit) so the content hash is all that matters.
import { chmod, copyFile, lstat, mkdir, open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { BentoError } from '../../common/protocol/errors.js';
import { inPool } from '../../common/platform/pool.js';

/** Top-level names in the fleet directory a configuration may never link to. */
const PRIVATE_TOP = new Set(['hub_ed25519_key', 'hub_ed25519_key.pub', 'hub.json', 'registry.json', 'registry.lock', 'hub.sock', 'state', 'jails']);

export interface SnapshotLimits {
  maxFiles: number;
  maxBytes: number;
}

export const DEFAULT_SNAPSHOT_LIMITS: SnapshotLimits = { maxFiles: 100_000, maxBytes: 4 * 1024 ** 3 };

export async function snapshotTree(srcDir: string, destDir: string, fleetDir: string, label: string, limits = DEFAULT_SNAPSHOT_LIMITS): Promise<void> {
  const realFleet = await realpath(fleetDir);
  let files = 0;
  let bytes = 0;
  const refuse = (rel: string, why: string): never => {
    throw new BentoError('PUBLISH_REFUSED', `${label}/${rel}: ${why}`);
  };
  const allowedTarget = (real: string): string | null => {
    if (real !== realFleet && !real.startsWith(`${realFleet}/`)) return 'points outside the fleet directory';
    const top = path.relative(realFleet, real).split(path.sep)[0] ?? '';
    if (PRIVATE_TOP.has(top)) return `points at the hub's own ${top}`;
    const parts = path.relative(realFleet, real).split(path.sep);
    if (parts[0] === 'hosts' && parts[2] === 'secrets') return 'points into a host\'s secrets/ (delivered separately, never published)';
    return null;
  };

  const copyEntry = async (abs: string, dest: string, rel: string, chain: string[]): Promise<void> => {
    let st = await lstat(abs);
    let real = abs;
    if (st.isSymbolicLink()) {
      const target = await realpath(abs).catch(() => null);
      if (!target) refuse(rel, 'dangling symlink');
      const why = allowedTarget(target!);
      if (why) refuse(rel, `symlink ${why} (${target}); refused`);
      real = target!;
      st = await stat(real);
    }
    if (st.isDirectory()) {
      const realDir = await realpath(real);
      if (chain.includes(realDir)) refuse(rel, 'symlink loop');
      await mkdir(dest, { mode: 0o755 });
      for (const name of (await readdir(real)).sort()) {
        await copyEntry(path.join(real, name), path.join(dest, name), rel ? `${rel}/${name}` : name, [...chain, realDir]);
      }
    } else if (st.isFile()) {
      files++;
      bytes += st.size;
      if (files > limits.maxFiles) refuse(rel, `more than ${limits.maxFiles} files in this configuration`);
      if (bytes > limits.maxBytes) refuse(rel, `more than ${limits.maxBytes} bytes in this configuration`);
      copies.push({ from: real, to: dest, exec: (st.mode & 0o111) !== 0 });
    } else {
      refuse(rel, 'not a regular file or directory (socket, fifo or device); refused');
    }
  };

  const copies: Array<{ from: string; to: string; exec: boolean }> = [];
  const realSrc = await realpath(srcDir);
  const why = allowedTarget(realSrc);
  if (why) throw new BentoError('PUBLISH_REFUSED', `${label}: ${why}`);
  await mkdir(destDir, { mode: 0o755 });
  for (const name of (await readdir(realSrc)).sort()) {
    // A host tree's secrets/ is delivered separately (hub/secrets/), never published.
    if (name === 'secrets') continue;
    await copyEntry(path.join(realSrc, name), path.join(destDir, name), name, [realSrc]);
  }
  // Copy and fsync in parallel (the journal merges the syncs): durable before
  // the version can be committed, so after a power cut version.json never
  // names a tree with empty files.
  await inPool(copies, 32, async (c) => {
    await copyFile(c.from, c.to);
    await chmod(c.to, c.exec ? 0o555 : 0o444);
    const fh = await open(c.to, 'r');
    await fh.sync().finally(() => fh.close());
  });
}
