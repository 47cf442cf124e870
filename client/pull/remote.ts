// What the agent does over SFTP, against the hub's jail or a stock OpenSSH
// sftp chroot laid out like upstream Bento: read the published state,
// download config/ into a local directory, upload a log. Only basic SFTP v3
// requests are used (OPEN READ WRITE CLOSE STAT OPENDIR READDIR), so any
// server works.
import { mkdir, open as openLocal, chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { SFTPWrapper, Stats, FileEntryWithStats } from 'ssh2';
import { BentoError } from '../../common/protocol/errors.js';
import { inPool } from '../../common/platform/pool.js';

const { OPEN_MODE: M, STATUS_CODE: S } = ssh2.utils.sftp;
const CHUNK = 32 * 1024;

/** The hub's jail serves version.json; upstream's chroot only last_change_date. */
export type RemoteState =
  | { layout: 'bento'; hash: string; publishedAt: string }
  | { layout: 'upstream'; stamp: string };

const isMissing = (err: unknown): boolean => (err as { code?: unknown })?.code === S.NO_SUCH_FILE;

function p<T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
}

export function statRemote(sftp: SFTPWrapper, file: string): Promise<Stats | null> {
  return p<Stats>((cb) => sftp.stat(file, cb)).catch((err: unknown) => {
    if (isMissing(err)) return null;
    throw err;
  });
}

/**
 * A small file in full; null when it does not exist. `complete` may say that
 * a short read already holds the whole file (saves the round trip that would
 * only return EOF); when it says no, reading goes on to EOF.
 */
export async function readRemoteFile(sftp: SFTPWrapper, file: string, max = 1024 * 1024, complete?: (data: Buffer) => boolean): Promise<Buffer | null> {
  let handle: Buffer;
  try {
    handle = await p<Buffer>((cb) => sftp.open(file, 'r', cb));
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  try {
    const chunks: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const buf = Buffer.alloc(CHUNK);
      const n = await new Promise<number>((resolve, reject) => sftp.read(handle, buf, 0, CHUNK, pos, (err, bytes) => (err ? reject(err) : resolve(bytes))));
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      pos += n;
      if (pos > max) throw new BentoError('PROTOCOL_OVERSIZED', `${file} is larger than ${max} bytes`);
      if (n < CHUNK && complete?.(Buffer.concat(chunks))) break;
    }
    return Buffer.concat(chunks);
  } finally {
    await p<void>((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}

/** The published state, or null when nothing is published for this host. */
export async function readRemoteState(sftp: SFTPWrapper): Promise<RemoteState | null> {
  const raw = await readRemoteFile(sftp, 'version.json', 64 * 1024, (d) => isJson(d));
  if (raw) {
    let v: { hash?: unknown; publishedAt?: unknown };
    try {
      v = JSON.parse(raw.toString('utf8')) as typeof v;
    } catch {
      throw new BentoError('PROTOCOL_MALFORMED', 'version.json on the server is not JSON');
    }
    if (typeof v.hash !== 'string' || !/^[0-9a-f]{64}$/.test(v.hash)) throw new BentoError('PROTOCOL_MALFORMED', 'version.json on the server has no valid hash');
    return { layout: 'bento', hash: v.hash, publishedAt: typeof v.publishedAt === 'string' ? v.publishedAt : '' };
  }
  // Upstream Bento touches last_change_date on every change and its clients
  // compare `ls -l last_change_date`: size and mtime are the whole signal.
  const st = await statRemote(sftp, 'last_change_date');
  if (!st) return null;
  return { layout: 'upstream', stamp: `${st.size}:${st.mtime}` };
}

export interface DownloadLimits {
  maxFiles: number;
  maxBytes: number;
}

export const DEFAULT_DOWNLOAD_LIMITS: DownloadLimits = { maxFiles: 100_000, maxBytes: 1024 ** 3 };

/** Copy the remote directory tree into localDir (which must not exist). */
export async function downloadTree(sftp: SFTPWrapper, remoteDir: string, localDir: string, limits = DEFAULT_DOWNLOAD_LIMITS): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const queue: Array<{ remote: string; local: string; exec: boolean }> = [];
  const walk = async (remote: string, local: string): Promise<void> => {
    await mkdir(local, { mode: 0o755 });
    const list = await p<FileEntryWithStats[]>((cb) => sftp.readdir(remote, cb as never));
    for (const e of list.sort((a, b) => (a.filename < b.filename ? -1 : 1))) {
      const name = e.filename;
      if (name === '.' || name === '..' || name.includes('/') || name.includes('\0') || name === '') {
        throw new BentoError('PROTOCOL_MALFORMED', `server listed an invalid name ${JSON.stringify(name)} in ${remote}`);
      }
      const r = `${remote}/${name}`;
      const l = path.join(local, name);
      const mode = e.attrs.mode;
      const type = mode & 0o170000;
      if (type === 0o040000) await walk(r, l);
      else if (type === 0o100000) {
        files++;
        bytes += e.attrs.size;
        if (files > limits.maxFiles || bytes > limits.maxBytes) throw new BentoError('PROTOCOL_OVERSIZED', `the published configuration is larger than ${limits.maxFiles} files / ${limits.maxBytes} bytes`);
        queue.push({ remote: r, local: l, exec: (mode & 0o111) !== 0 });
      } else {
        throw new BentoError('PROTOCOL_MALFORMED', `${r} is not a regular file or directory (symlinks are not part of a published configuration)`);
      }
    }
  };
  await walk(remoteDir, localDir);
  await inPool(queue, 8, async (f) => {
    await downloadFile(sftp, f.remote, f.local, limits.maxBytes);
    await chmod(f.local, f.exec ? 0o555 : 0o444);
  });
  return { files, bytes };
}

async function downloadFile(sftp: SFTPWrapper, remote: string, local: string, max: number): Promise<void> {
  const handle = await p<Buffer>((cb) => sftp.open(remote, 'r', cb));
  const out = await openLocal(local, 'wx', 0o644);
  try {
    let pos = 0;
    for (;;) {
      const buf = Buffer.alloc(CHUNK);
      const n = await new Promise<number>((resolve, reject) => sftp.read(handle, buf, 0, CHUNK, pos, (err, b) => (err ? reject(err) : resolve(b))));
      if (n === 0) break;
      await out.write(buf, 0, n, pos);
      pos += n;
      if (pos > max) throw new BentoError('PROTOCOL_OVERSIZED', `${remote} is larger than ${max} bytes`);
    }
    await out.sync();
  } finally {
    await out.close();
    await p<void>((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}

/** Upload a local file as a NEW remote file (CREAT|EXCL: logs are create-only). */
export async function uploadFile(sftp: SFTPWrapper, localFile: string, remote: string): Promise<void> {
  const data = await readFile(localFile);
  const handle = await p<Buffer>((cb) => sftp.open(remote, M.WRITE | M.CREAT | M.EXCL as never, cb));
  try {
    for (let pos = 0; pos < data.length; pos += CHUNK) {
      const n = Math.min(CHUNK, data.length - pos);
      await p<void>((cb) => sftp.write(handle, data, pos, n, pos, cb));
    }
  } finally {
    await p<void>((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}

/** The SFTP status code of an error (2 = no such file, 3 = permission denied, ...), if any. */
export function sftpCode(err: unknown): number | null {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'number' ? c : null;
}

function isJson(d: Buffer): boolean {
  try {
    JSON.parse(d.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
