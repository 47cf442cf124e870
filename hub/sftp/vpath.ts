// The jail's virtual namespace, as pure functions (no I/O). A host's SFTP
// session sees only:
//
//   /                    directory
//   /version.json        the published version (hash, time), read-only
//   /last_change_date    upstream Bento's change marker, read-only
//   /config/...          the published tree, read-only
//   /logs/NAME           create + write only
//
// Paths are parsed, never joined onto a real directory: a name that is not in
// this namespace does not exist, whatever bytes it holds. ".." is refused
// everywhere except REALPATH, which normalizes lexically and clamps at "/"
// the way a chroot does (OpenSSH's `cd ..` needs it); the result is parsed
// again by whatever operation uses it.

export type VNode =
  | { kind: 'root' }
  | { kind: 'meta'; name: 'version.json' | 'last_change_date' }
  | { kind: 'config'; rel: string[] }
  | { kind: 'logs' }
  | { kind: 'log'; name: string };

export type Parsed = VNode | { kind: 'denied'; why: string } | { kind: 'missing' };

/** Longest path we look at; longer is refused before any parsing. */
export const MAX_PATH = 4096;
const MAX_COMPONENT = 255;

/** Log names a host may create: like upstream's 20240102-0304_<system>_success.log.gz. */
export const LOG_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+=-]{0,199}$/;
/** The longest log name LOG_NAME_RE takes (each host's log list in a cluster is sized by it: publish/settings.ts). */
export const LOG_NAME_MAX = 200;

export function parseVirtual(p: string): Parsed {
  if (typeof p !== 'string' || p.length > MAX_PATH) return { kind: 'denied', why: 'path too long' };
  // eslint-disable-next-line no-control-regex
  if (/[\x00]/.test(p)) return { kind: 'denied', why: 'NUL in path' };
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') return { kind: 'denied', why: '".." in path' };
    if (c.length > MAX_COMPONENT) return { kind: 'denied', why: 'name too long' };
    parts.push(c);
  }
  if (parts.length === 0) return { kind: 'root' };
  const [top, ...rest] = parts as [string, ...string[]];
  if (top === 'version.json' || top === 'last_change_date') return rest.length ? { kind: 'missing' } : { kind: 'meta', name: top };
  if (top === 'config') return { kind: 'config', rel: rest };
  if (top === 'logs') {
    if (rest.length === 0) return { kind: 'logs' };
    if (rest.length === 1) return { kind: 'log', name: rest[0]! };
    return { kind: 'missing' };
  }
  return { kind: 'missing' };
}

/** REALPATH: lexical normalization inside the virtual root ("/a/../.." -> "/"). */
export function realpathVirtual(p: string): string | null {
  if (typeof p !== 'string' || p.length > MAX_PATH || p.includes('\0')) return null;
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return `/${out.join('/')}`;
}

export function describe(n: VNode): string {
  switch (n.kind) {
    case 'root': return '/';
    case 'meta': return `/${n.name}`;
    case 'config': return `/config${n.rel.length ? `/${n.rel.join('/')}` : ''}`;
    case 'logs': return '/logs';
    case 'log': return `/logs/${n.name}`;
  }
}
