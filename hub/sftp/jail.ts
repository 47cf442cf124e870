// The hub's SFTP subsystem: one jail per host, implemented here request by
// request on ssh2's SFTP server (no OpenSSH, no chroot, no real filesystem
// view). Handled: OPEN READ WRITE CLOSE STAT LSTAT FSTAT OPENDIR READDIR
// REALPATH. Everything else (SETSTAT, FSETSTAT, MKDIR, RMDIR, REMOVE, RENAME,
// READLINK, SYMLINK, EXTENDED) gets PERMISSION_DENIED.
//
// How nothing escapes:
// - Paths are parsed into a tiny virtual namespace (vpath.ts) and never joined
//   onto a disk path as strings; ".." is refused; unknown names do not exist.
// - /config is the host's OWN published version: jails/NAME/versions/HASH,
//   HASH taken from its own version.json. The jail root is the session's
//   authenticated host name, nothing the client says.
// - Below /config every component is lstat'ed: a symlink or special file is
//   reported as absent, never followed. Files are opened with O_NOFOLLOW and
//   the opened descriptor's real path (/proc/self/fd) must lie inside the
//   version directory; directories must realpath to themselves.
// - /logs takes only new files (O_CREAT|O_EXCL|O_NOFOLLOW) with plain names,
//   under a per-host byte and file quota; logs cannot be read, listed,
//   appended to, overwritten, renamed or removed by the host.
// - Handles are per session, opaque, bounded in number, and typed: a read
//   handle cannot write, a log handle cannot read.
// One session's requests are processed in order, so quota accounting and
// handle state have no races.
import { constants as C } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, realpath, unlink, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import { printable } from '../../common/protocol/names.js';
import { HASH_RE, jailPaths, jailsDir } from '../publish/layout.js';
import type { PublishSettings } from '../publish/settings.js';
import { LOG_NAME_RE, describe, parseVirtual, realpathVirtual, type VNode } from './vpath.js';

const { STATUS_CODE: S, OPEN_MODE: M } = ssh2.utils.sftp;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const MAX_HANDLES = 32;
const MAX_READ = 64 * 1024;
const READDIR_BATCH = 64;
const MAX_SESSIONS_PER_HOST = 8;
const MAX_PENDING = 256;
/** Refusals logged per session; a client hammering the jail cannot flood the log. */
const MAX_LOGGED_REFUSALS = 20;

class Refusal extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}
const denied = (why: string): Refusal => new Refusal(S.PERMISSION_DENIED, why);
const missing = (): Refusal => new Refusal(S.NO_SUCH_FILE, 'No such file');
const failure = (why: string): Refusal => new Refusal(S.FAILURE, why);

type Handle =
  | { kind: 'mem'; data: Buffer; mtime: number }
  | { kind: 'file'; fh: FileHandle; size: number; mtime: number; exec: boolean }
  | { kind: 'log'; fh: FileHandle; name: string; size: number; usage: LogUsage }
  | { kind: 'dir'; entries: FileEntry[]; pos: number };

interface Snapshot {
  /** Real path of jails/NAME (no symlinks), or null when the jail does not exist yet. */
  jailRoot: string | null;
  /** version.json as published, or null when nothing is. */
  version: { raw: Buffer; hash: string; mtime: number; dir: string; lastChange: Buffer } | null;
}

/** Per-host log usage, shared by all of that host's sessions. */
class LogUsage {
  bytes = 0;
  files = new Map<string, number>();
  open = new Set<string>();
  constructor(readonly dir: string) {}
}

export interface SftpJailOptions {
  fleetDir: string;
  settings: PublishSettings;
  log: Logger;
}

export class SftpJail {
  private readonly usage = new Map<string, Promise<LogUsage>>();
  private readonly sessions = new Map<string, number>();

  constructor(private readonly opts: SftpJailOptions) {}

  /** Serve one accepted SFTP channel for an authenticated host. */
  serve(host: string, sftp: SFTPWrapper): void {
    const n = (this.sessions.get(host) ?? 0) + 1;
    if (n > MAX_SESSIONS_PER_HOST) {
      this.opts.log.warn({ host }, `refused sftp session: more than ${MAX_SESSIONS_PER_HOST} at once`);
      sftp.end();
      return;
    }
    this.sessions.set(host, n);
    const session = new JailSession(this, host, sftp, this.opts);
    sftp.on('close', () => {
      const left = (this.sessions.get(host) ?? 1) - 1;
      if (left <= 0) this.sessions.delete(host);
      else this.sessions.set(host, left);
      void session.closeAll();
    });
    sftp.on('error', (err: Error) => this.opts.log.debug({ host, err: err.message }, 'sftp channel error'));
    // The client is done (EOF): answer like OpenSSH's sftp-server, with exit
    // status 0 and a close; without it `ssh` exits 255 and `sftp -b` fails.
    sftp.on('end', () => {
      const raw = sftp as unknown as { _protocol?: { exitStatus(id: number, code: number): void }; outgoing?: { id: number; state: string } };
      try {
        if (raw.outgoing?.state === 'open') raw._protocol?.exitStatus(raw.outgoing.id, 0);
      } catch { /* channel already gone */ }
      sftp.end();
    });
  }

  logUsage(host: string, logsDir: string): Promise<LogUsage> {
    let u = this.usage.get(host);
    if (!u) {
      u = (async () => {
        const usage = new LogUsage(logsDir);
        for (const name of await readdir(logsDir).catch(() => [] as string[])) {
          const st = await lstat(path.join(logsDir, name)).catch(() => null);
          if (st?.isFile()) {
            usage.files.set(name, st.size);
            usage.bytes += st.size;
          }
        }
        return usage;
      })();
      u.catch(() => this.usage.delete(host));
      this.usage.set(host, u);
    }
    return u;
  }
}

class JailSession {
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  private queue: Promise<void> = Promise.resolve();
  private snap: Promise<Snapshot> | null = null;
  private refusals = 0;
  private pending = 0;

  constructor(private readonly jail: SftpJail, private readonly host: string, private readonly sftp: SFTPWrapper, private readonly opts: SftpJailOptions) {
    const on = (ev: string, fn: (reqId: number, ...args: never[]) => Promise<void>): void => {
      sftp.on(ev as 'OPEN', ((reqId: number, ...args: never[]) => this.enqueue(reqId, ev, () => fn(reqId, ...args))) as never);
    };
    on('OPEN', (id, filename: string, flags: number) => this.open(id, filename, flags));
    on('READ', (id, handle: Buffer, offset: number, len: number) => this.read(id, handle, offset, len));
    on('WRITE', (id, handle: Buffer, offset: number, data: Buffer) => this.write(id, handle, offset, data));
    on('CLOSE', (id, handle: Buffer) => this.close(id, handle));
    on('FSTAT', (id, handle: Buffer) => this.fstat(id, handle));
    on('STAT', (id, p: string) => this.stat(id, p));
    on('LSTAT', (id, p: string) => this.stat(id, p));
    on('OPENDIR', (id, p: string) => this.opendir(id, p));
    on('READDIR', (id, handle: Buffer) => this.readdir(id, handle));
    on('REALPATH', (id, p: string) => this.realpath(id, p));
    for (const ev of ['SETSTAT', 'FSETSTAT', 'MKDIR', 'RMDIR', 'REMOVE', 'RENAME', 'READLINK', 'SYMLINK', 'EXTENDED']) {
      on(ev, async (_id, a: unknown, b: unknown) => {
        const what = typeof a === 'string' ? a : typeof b === 'string' ? b : '';
        throw denied(`${ev} is not allowed${what ? ` (${printable(what, 120)})` : ''}`);
      });
    }
  }

  private enqueue(reqId: number, op: string, fn: () => Promise<void>): void {
    // Bounded work per session: a client pipelining without end gets FAILURE,
    // not an ever longer queue.
    if (this.pending >= MAX_PENDING) {
      try { this.sftp.status(reqId, S.FAILURE, 'too many outstanding requests'); } catch { /* gone */ }
      return;
    }
    this.pending++;
    this.queue = this.queue.then(() => this.backpressure()).then(fn).catch((err: unknown) => {
      const r = err instanceof Refusal ? err : null;
      if (!r) this.opts.log.error({ host: this.host, op, err: (err as Error).message }, 'sftp request failed');
      else if (r.code !== S.NO_SUCH_FILE && r.code !== S.EOF && this.refusals++ < MAX_LOGGED_REFUSALS) {
        this.opts.log.warn({ host: this.host, op, reason: r.message }, 'sftp jail refused a request');
      }
      try {
        this.sftp.status(reqId, r?.code ?? S.FAILURE, r?.message ?? 'internal error');
      } catch { /* channel gone */ }
    }).finally(() => { this.pending--; });
  }

  /** Answers wait while the client is not reading them (SSH window full): memory stays bounded. */
  private async backpressure(): Promise<void> {
    const raw = this.sftp as unknown as { _buffer?: unknown[]; outgoing?: { state: string } };
    const t0 = Date.now();
    while ((raw._buffer?.length ?? 0) > 0 && raw.outgoing?.state === 'open') {
      if (Date.now() - t0 > 120_000) {
        this.sftp.end();
        throw failure('the client stopped reading');
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async closeAll(): Promise<void> {
    await this.queue.catch(() => undefined);
    for (const h of this.handles.values()) await this.release(h);
    this.handles.clear();
  }

  // ---- resolution -------------------------------------------------------

  private snapshot(): Promise<Snapshot> {
    this.snap ??= this.loadSnapshot();
    return this.snap;
  }

  /** Taken once per session: a session sees the version current when it first looked. */
  private async loadSnapshot(): Promise<Snapshot> {
    const lexical = jailPaths(this.opts.fleetDir, this.host).root;
    let realJails: string;
    try {
      realJails = await realpath(jailsDir(this.opts.fleetDir));
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

  private parse(p: string): VNode {
    const n = parseVirtual(p);
    if (n.kind === 'denied') throw denied(`${n.why}: ${printable(p, 120)}`);
    if (n.kind === 'missing') throw missing();
    return n;
  }

  /** lstat each component below the version dir; symlinks and special files do not exist. */
  private async configEntry(rel: string[]): Promise<{ abs: string; st: Stats; root: string }> {
    const v = (await this.snapshot()).version;
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

  private async attrsOf(n: VNode): Promise<Attributes> {
    const snap = await this.snapshot();
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
        const { st } = await this.configEntry(n.rel);
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

  // ---- handles ----------------------------------------------------------

  private addHandle(h: Handle): Buffer {
    if (this.handles.size >= MAX_HANDLES) throw failure(`too many open handles (max ${MAX_HANDLES})`);
    const id = this.nextHandle++;
    this.handles.set(id, h);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id >>> 0);
    return b;
  }

  private handleOf(buf: Buffer): [number, Handle] {
    if (!Buffer.isBuffer(buf) || buf.length !== 4) throw failure('invalid handle');
    const id = buf.readUInt32BE(0);
    const h = this.handles.get(id);
    if (!h) throw failure('invalid handle');
    return [id, h];
  }

  private async release(h: Handle): Promise<void> {
    if (h.kind === 'file' || h.kind === 'log') await h.fh.close().catch(() => undefined);
    if (h.kind === 'log') h.usage.open.delete(h.name);
  }

  // ---- operations -------------------------------------------------------

  private async open(id: number, filename: string, flags: number): Promise<void> {
    const writing = (flags & (M.WRITE | M.APPEND | M.CREAT | M.TRUNC | M.EXCL)) !== 0;
    const parsed = parseVirtual(filename);
    // Writing is only ever creating a new log; anything else is refused before existence is even looked at.
    if (writing && parsed.kind !== 'log') throw denied(`${printable(filename, 120)} is read-only (only new files in logs/ can be written)`);
    const n = this.parse(filename);
    if (n.kind === 'log') {
      if (!writing) throw denied('logs/ is write-only');
      return this.openLog(id, n.name, flags);
    }
    if (n.kind === 'meta') {
      const v = (await this.snapshot()).version;
      if (!v) throw missing();
      this.sftp.handle(id, this.addHandle({ kind: 'mem', data: n.name === 'version.json' ? v.raw : v.lastChange, mtime: v.mtime }));
      return;
    }
    if (n.kind !== 'config') throw failure(`${describe(n)} is a directory`);
    const { abs, st, root } = await this.configEntry(n.rel);
    if (!st.isFile()) throw failure(`${describe(n)} is a directory`);
    let fh: FileHandle;
    try {
      fh = await open(abs, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
    } catch {
      throw missing();
    }
    try {
      const fst = await fh.stat();
      if (!fst.isFile() || !(await fdInside(fh, root))) throw missing();
      this.sftp.handle(id, this.addHandle({ kind: 'file', fh, size: fst.size, mtime: secs(fst.mtimeMs), exec: (fst.mode & 0o111) !== 0 }));
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  private async openLog(id: number, name: string, flags: number): Promise<void> {
    const { settings } = this.opts;
    if (!LOG_NAME_RE.test(name)) throw denied(`log name ${printable(name, 80)} is not allowed (letters, digits, . _ + = -)`);
    if (flags & M.READ) throw denied('logs/ is write-only');
    if (flags & M.APPEND) throw denied('logs/ is create-only: no appending');
    if (!(flags & M.CREAT)) throw denied('logs/ is create-only: open with CREAT');
    const snap = await this.snapshot();
    const realJails = await realpath(jailsDir(this.opts.fleetDir)).catch(async () => {
      await mkdir(jailsDir(this.opts.fleetDir), { recursive: true, mode: 0o755 });
      return realpath(jailsDir(this.opts.fleetDir));
    });
    const jailRoot = snap.jailRoot ?? path.join(realJails, this.host);
    const logsDir = path.join(jailRoot, 'logs');
    await mkdir(logsDir, { recursive: true, mode: 0o700 });
    const ls = await lstat(logsDir);
    if (!ls.isDirectory() || (await realpath(logsDir)) !== logsDir) throw failure('logs directory is not usable');
    const usage = await this.jail.logUsage(this.host, logsDir);
    if (usage.files.has(name)) throw denied(`logs/${name} exists; logs are create-only`);
    await this.prune(usage, settings);
    if (usage.files.size >= settings.logMaxFiles) throw failure(`log quota exceeded: ${settings.logMaxFiles} files`);
    const abs = path.join(logsDir, name);
    let fh: FileHandle;
    try {
      fh = await open(abs, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw denied(`logs/${name} exists; logs are create-only`);
      throw err;
    }
    if ((await readlink(`/proc/self/fd/${fh.fd}`).catch(() => '')) !== abs) {
      await fh.close();
      this.opts.log.error({ host: this.host, name }, 'a log file opened somewhere else than its jail; refusing');
      throw failure('logs directory is not usable');
    }
    usage.files.set(name, 0);
    usage.open.add(name);
    this.sftp.handle(id, this.addHandle({ kind: 'log', fh, name, size: 0, usage }));
  }

  /** Drop the oldest finished logs once a host uses half its quota, so uploads keep working. */
  private async prune(usage: LogUsage, s: PublishSettings): Promise<void> {
    if (usage.bytes <= s.logQuotaBytes / 2 && usage.files.size < s.logMaxFiles) return;
    const names = [...usage.files.keys()].filter((n) => !usage.open.has(n)).sort();
    for (const name of names) {
      if (usage.bytes <= s.logQuotaBytes / 2 && usage.files.size < s.logMaxFiles) break;
      await unlink(path.join(usage.dir, name)).catch(() => undefined);
      usage.bytes -= usage.files.get(name) ?? 0;
      usage.files.delete(name);
    }
  }

  private async read(id: number, handle: Buffer, offset: number, len: number): Promise<void> {
    const [, h] = this.handleOf(handle);
    if (h.kind === 'log') throw denied('logs/ is write-only');
    if (h.kind === 'dir') throw failure('is a directory');
    const n = Math.max(0, Math.min(len, MAX_READ));
    if (h.kind === 'mem') {
      if (offset >= h.data.length) throw new Refusal(S.EOF, 'EOF');
      this.sftp.data(id, h.data.subarray(offset, offset + n));
      return;
    }
    if (offset >= h.size && offset >= (await h.fh.stat()).size) throw new Refusal(S.EOF, 'EOF');
    const buf = Buffer.alloc(n);
    const { bytesRead } = await h.fh.read(buf, 0, n, offset);
    if (bytesRead === 0) throw new Refusal(S.EOF, 'EOF');
    this.sftp.data(id, buf.subarray(0, bytesRead));
  }

  private async write(id: number, handle: Buffer, offset: number, data: Buffer): Promise<void> {
    const [, h] = this.handleOf(handle);
    if (h.kind !== 'log') throw denied('read-only');
    const quota = this.opts.settings.logQuotaBytes;
    const usage = h.usage;
    const end = offset + data.length;
    const growth = Math.max(0, end - h.size);
    if (!Number.isSafeInteger(end) || end > quota || usage.bytes + growth > quota) {
      throw failure(`log quota exceeded: ${quota} bytes per host`);
    }
    await h.fh.write(data, 0, data.length, offset);
    h.size += growth;
    usage.bytes += growth;
    usage.files.set(h.name, h.size);
    this.sftp.status(id, S.OK);
  }

  private async close(id: number, handle: Buffer): Promise<void> {
    const [hid, h] = this.handleOf(handle);
    this.handles.delete(hid);
    await this.release(h);
    this.sftp.status(id, S.OK);
  }

  private async fstat(id: number, handle: Buffer): Promise<void> {
    const [, h] = this.handleOf(handle);
    switch (h.kind) {
      case 'mem': return this.sftp.attrs(id, fileAttrs(0o444, h.data.length, h.mtime));
      case 'file': return this.sftp.attrs(id, fileAttrs(h.exec ? 0o555 : 0o444, h.size, h.mtime));
      case 'log': return this.sftp.attrs(id, fileAttrs(0o200, h.size, Math.floor(Date.now() / 1000)));
      case 'dir': return this.sftp.attrs(id, dirAttrs(0o555, 0));
    }
  }

  private async stat(id: number, p: string): Promise<void> {
    this.sftp.attrs(id, await this.attrsOf(this.parse(p)));
  }

  private async opendir(id: number, p: string): Promise<void> {
    const n = this.parse(p);
    const snap = await this.snapshot();
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
      const { abs, st, root } = await this.configEntry(n.rel);
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
    this.sftp.handle(id, this.addHandle({ kind: 'dir', entries, pos: 0 }));
  }

  private async readdir(id: number, handle: Buffer): Promise<void> {
    const [, h] = this.handleOf(handle);
    if (h.kind !== 'dir') throw failure('not a directory handle');
    if (h.pos >= h.entries.length) throw new Refusal(S.EOF, 'EOF');
    const batch = h.entries.slice(h.pos, h.pos + READDIR_BATCH);
    h.pos += batch.length;
    this.sftp.name(id, batch);
  }

  private async realpath(id: number, p: string): Promise<void> {
    const r = realpathVirtual(p);
    if (r === null) throw denied('invalid path');
    this.sftp.name(id, [{ filename: r, longname: r, attrs: {} as Attributes }]);
  }
}

// ---- helpers --------------------------------------------------------------

const secs = (ms: number): number => Math.floor(ms / 1000);

function fileAttrs(perm: number, size: number, mtime: number): Attributes {
  return { mode: S_IFREG | perm, uid: 0, gid: 0, size, atime: mtime, mtime };
}

function dirAttrs(perm: number, mtime: number): Attributes {
  return { mode: S_IFDIR | perm, uid: 0, gid: 0, size: 4096, atime: mtime, mtime };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** An `ls -l` line, as OpenSSH's sftp-server writes it in READDIR's longname. */
function entry(filename: string, attrs: Attributes): FileEntry {
  const m = attrs.mode;
  const bits = (p: number): string => `${p & 4 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 1 ? 'x' : '-'}`;
  const perms = `${(m & 0o170000) === S_IFDIR ? 'd' : '-'}${bits((m >> 6) & 7)}${bits((m >> 3) & 7)}${bits(m & 7)}`;
  const d = new Date(attrs.mtime * 1000);
  const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  return { filename, longname: `${perms}    1 root     root     ${String(attrs.size).padStart(8)} ${date} ${filename}`, attrs };
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

