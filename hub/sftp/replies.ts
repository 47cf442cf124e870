// What the jail answers with, and nothing else: SFTP status refusals (thrown
// by any step, turned into one STATUS reply by the session) and the attribute
// and `ls -l` records of STAT and READDIR. No I/O.
import ssh2 from 'ssh2';
import type { Attributes, FileEntry } from 'ssh2';

export const { STATUS_CODE: S, OPEN_MODE: M } = ssh2.utils.sftp;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/** A request answered with an SFTP status code instead of data. */
export class Refusal extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}
export const denied = (why: string): Refusal => new Refusal(S.PERMISSION_DENIED, why);
export const missing = (): Refusal => new Refusal(S.NO_SUCH_FILE, 'No such file');
export const failure = (why: string): Refusal => new Refusal(S.FAILURE, why);

export const secs = (ms: number): number => Math.floor(ms / 1000);

export function fileAttrs(perm: number, size: number, mtime: number): Attributes {
  return { mode: S_IFREG | perm, uid: 0, gid: 0, size, atime: mtime, mtime };
}

export function dirAttrs(perm: number, mtime: number): Attributes {
  return { mode: S_IFDIR | perm, uid: 0, gid: 0, size: 4096, atime: mtime, mtime };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** An `ls -l` line, as OpenSSH's sftp-server writes it in READDIR's longname. */
export function entry(filename: string, attrs: Attributes): FileEntry {
  const m = attrs.mode;
  const bits = (p: number): string => `${p & 4 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 1 ? 'x' : '-'}`;
  const perms = `${(m & 0o170000) === S_IFDIR ? 'd' : '-'}${bits((m >> 6) & 7)}${bits((m >> 3) & 7)}${bits(m & 7)}`;
  const d = new Date(attrs.mtime * 1000);
  const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  return { filename, longname: `${perms}    1 root     root     ${String(attrs.size).padStart(8)} ${date} ${filename}`, attrs };
}
