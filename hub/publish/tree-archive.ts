// A published configuration tree as one byte stream, so a cluster can keep it
// as one object (hub/cluster/published-kv.ts) and every hub can rebuild the
// same tree in its own jail. Only what the content hash covers travels:
// directories, regular files, their contents and exec bits.
//
//   bento-tree-archive-v1\n
//   {"d":"rel/dir"}\n                      a directory (parents come first)
//   {"f":"rel/file","n":SIZE,"x":BOOL}\n   a file, followed by exactly SIZE bytes
//   {"end":FILES}\n                        the end (a cut-off archive is refused)
//
// Unpacking trusts nothing in the stream: every path is checked component by
// component (no "..", ".", empty names, NUL or "/" tricks), its parent must be
// a directory the archive created before, nothing is created twice (mkdir and
// O_CREAT|O_EXCL|O_NOFOLLOW into a fresh directory), sizes and counts are
// bounded, and the caller compares the result's content hash with the one it
// expects before it serves anything.
import { constants as C } from 'node:fs';
import { mkdir, open, readdir, lstat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { BentoError } from '../../common/protocol/errors.js';
import { DEFAULT_SNAPSHOT_LIMITS, type SnapshotLimits } from './snapshot.js';

const MAGIC = 'bento-tree-archive-v1\n';
const MAX_HEADER = 8192;
const MAX_PATH = 4096;
const READ_CHUNK = 256 * 1024;
const WRITE_CHUNK = 256 * 1024;

/** The archive of the tree at ROOT (directories and regular files only, in sorted order), as chunks. */
export async function* packTree(root: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(MAGIC);
  let files = 0;
  const walk = async function* (dir: string, rel: string): AsyncGenerator<Uint8Array> {
    for (const name of (await readdir(dir)).sort()) {
      const abs = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(abs);
      if (st.isDirectory()) {
        yield header({ d: r });
        yield* walk(abs, r);
      } else if (st.isFile()) {
        files++;
        yield header({ f: r, n: st.size, x: (st.mode & 0o111) !== 0 });
        const fh = await open(abs, C.O_RDONLY | C.O_NOFOLLOW);
        try {
          let left = st.size;
          let pos = 0;
          while (left > 0) {
            const buf = Buffer.alloc(Math.min(READ_CHUNK, left));
            const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
            if (bytesRead === 0) throw new BentoError('PUBLISH_REFUSED', `${r} shrank while it was archived`);
            yield buf.subarray(0, bytesRead);
            left -= bytesRead;
            pos += bytesRead;
          }
        } finally {
          await fh.close();
        }
      } else {
        throw new BentoError('PUBLISH_REFUSED', `${r}: not a directory or regular file`);
      }
    }
  };
  yield* walk(root, '');
  yield header({ end: files });
}

function header(h: Record<string, unknown>): Uint8Array {
  return Buffer.from(`${JSON.stringify(h)}\n`);
}

function bad(why: string): BentoError {
  return new BentoError('PROTOCOL_MALFORMED', `configuration archive: ${why}`);
}

/** A relative path from an archive, checked; returns its components. */
export function archivePath(p: unknown): string[] {
  if (typeof p !== 'string' || p.length === 0 || p.length > MAX_PATH) throw bad('a path is missing or too long');
  const parts = p.split('/');
  for (const c of parts) {
    if (c === '' || c === '.' || c === '..' || c.length > 255 || c.includes('\0')) throw bad(`refused path ${JSON.stringify(p.slice(0, 200))}`);
  }
  return parts;
}

export interface UnpackResult { files: number; bytes: number }

/**
 * Rebuild a tree from CHUNKS under DEST (created here; must not exist). Files
 * get mode 0444 (0555 with the exec bit) and are fsync'd, directories 0755,
 * as a deploy's staging does. Throws PROTOCOL_MALFORMED for anything not
 * exactly as packTree writes it.
 */
export async function unpackTree(chunks: AsyncIterable<Uint8Array>, dest: string, limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS): Promise<UnpackResult> {
  await mkdir(dest, { mode: 0o755 });
  const dirs = new Set<string>(['']);
  let buf = Buffer.alloc(0);
  let magic = false;
  let ended = false;
  let files = 0;
  let bytes = 0;
  /** The file being written: how many of its bytes are still to come, and data not yet written (small chunks are gathered). */
  const st: { cur: { fh: FileHandle; left: number; pos: number; held: Buffer[]; heldBytes: number } | null } = { cur: null };

  const flush = async (): Promise<void> => {
    const f = st.cur!;
    if (f.heldBytes === 0) return;
    const data = Buffer.concat(f.held, f.heldBytes);
    f.held = [];
    f.heldBytes = 0;
    await f.fh.write(data, 0, data.length, f.pos);
    f.pos += data.length;
  };
  const finishFile = async (): Promise<void> => {
    await flush();
    const f = st.cur!;
    st.cur = null;
    try { await f.fh.sync(); } finally { await f.fh.close(); }
  };
  const onHeader = async (line: string): Promise<void> => {
    let h: Record<string, unknown>;
    try { h = JSON.parse(line) as Record<string, unknown>; } catch { throw bad('a header is not JSON'); }
    if (typeof h !== 'object' || h === null) throw bad('a header is not an object');
    if ('end' in h) {
      if (h['end'] !== files) throw bad(`the end says ${String(h['end'])} files, ${files} came`);
      ended = true;
      return;
    }
    const isDir = 'd' in h;
    const parts = archivePath(isDir ? h['d'] : h['f']);
    const parent = parts.slice(0, -1).join('/');
    if (!dirs.has(parent)) throw bad(`${parts.join('/')} comes before its directory`);
    const abs = path.join(dest, ...parts);
    if (isDir) {
      try { await mkdir(abs, { mode: 0o755 }); } catch { throw bad(`${parts.join('/')} appears twice`); }
      dirs.add(parts.join('/'));
      return;
    }
    const size = h['n'];
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`${parts.join('/')} has no valid size`);
    if (typeof h['x'] !== 'boolean') throw bad(`${parts.join('/')} has no exec flag`);
    if (++files > limits.maxFiles) throw bad(`more than ${limits.maxFiles} files`);
    if ((bytes += size) > limits.maxBytes) throw bad(`more than ${limits.maxBytes} bytes`);
    let fh: FileHandle;
    try {
      fh = await open(abs, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, h['x'] ? 0o555 : 0o444);
    } catch {
      throw bad(`${parts.join('/')} appears twice`);
    }
    st.cur = { fh, left: size, pos: 0, held: [], heldBytes: 0 };
    if (size === 0) await finishFile();
  };

  try {
    for await (const chunk of chunks) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
      while (buf.length > 0) {
        if (ended) throw bad('bytes after the end');
        if (!magic) {
          const n = Math.min(buf.length, MAGIC.length);
          if (buf.subarray(0, n).toString('latin1') !== MAGIC.slice(0, n)) throw bad('not a Bento configuration archive');
          if (buf.length < MAGIC.length) break;
          buf = buf.subarray(MAGIC.length);
          magic = true;
          continue;
        }
        const cur = st.cur;
        if (cur) {
          const take = Math.min(cur.left, buf.length);
          cur.held.push(buf.subarray(0, take));
          cur.heldBytes += take;
          cur.left -= take;
          buf = buf.subarray(take);
          if (cur.left === 0) await finishFile();
          else if (cur.heldBytes >= WRITE_CHUNK) await flush();
          continue;
        }
        const nl = buf.indexOf(0x0a);
        if (nl === -1) {
          if (buf.length > MAX_HEADER) throw bad('a header is too long');
          break;
        }
        if (nl > MAX_HEADER) throw bad('a header is too long');
        const line = buf.subarray(0, nl).toString('utf8');
        buf = buf.subarray(nl + 1);
        await onHeader(line);
      }
    }
    if (!ended || st.cur) throw bad('the archive is cut off');
  } finally {
    if (st.cur) await st.cur.fh.close().catch(() => undefined);
  }
  return { files, bytes };
}
