// One host's SFTP session in the jail: requests processed one at a time in
// arrival order, bounded in number, each answered from the session's handle
// table, the resolution of resolve.ts and the log quota of log-quota.ts.
// Anything a handler throws becomes one STATUS reply.
import type { FileHandle } from 'node:fs/promises';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import { printable } from '../../common/protocol/names.js';
import type { PublishSettings } from '../publish/settings.js';
import { describe, parseVirtual, realpathVirtual } from './vpath.js';
import { M, Refusal, S, denied, dirAttrs, failure, fileAttrs, missing, secs } from './replies.js';
import { attrsOf, configEntry, listDir, loadSnapshot, openInside, parsePath, type Snapshot } from './resolve.js';
import type { OutboundWaiter } from '../server/outbound-guard.js';
import { checkLogOpen, createLog, writeLog, type LogHandle, type LogQuotas } from './log-quota.js';

const MAX_HANDLES = 32;
const MAX_READ = 64 * 1024;
const READDIR_BATCH = 64;
const MAX_PENDING = 256;
/** Refusals logged per session; a client hammering the jail cannot flood the log. */
const MAX_LOGGED_REFUSALS = 20;

type Handle =
  | { kind: 'mem'; data: Buffer; mtime: number }
  | { kind: 'file'; fh: FileHandle; size: number; mtime: number; exec: boolean }
  | LogHandle
  | { kind: 'dir'; entries: FileEntry[]; pos: number };

export interface SessionOptions {
  fleetDir: string;
  settings: PublishSettings;
  log: Logger;
  quotas: LogQuotas;
  /** The host's connection: requests wait while it has not drained. */
  outbound?: OutboundWaiter | null;
}

export class JailSession {
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  private queue: Promise<void> = Promise.resolve();
  private snap: Promise<Snapshot> | null = null;
  private refusals = 0;
  private pending = 0;

  constructor(private readonly host: string, private readonly sftp: SFTPWrapper, private readonly opts: SessionOptions) {
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
      // Pipelining past the bound while not reading the answers either (its connection holds what the hub
      // sent): each FAILURE would be buffered too, about 1.4 KB of hub memory apiece (hostile-outbound), so
      // the connection is cut at once. No honest client has 256 requests outstanding.
      if (this.opts.outbound?.needsDrain()) { this.opts.outbound.cutNow(); return; }
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

  /**
   * Answers wait while the client is not reading them: memory stays bounded.
   * Its connection first: the SSH window is the peer's to set (it can grant
   * gigabytes without reading a byte), the socket's buffer is not.
   */
  private async backpressure(): Promise<void> {
    const out = this.opts.outbound;
    while (out?.needsDrain()) await out.drained();
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

  private snapshot(): Promise<Snapshot> {
    this.snap ??= loadSnapshot(this.opts.fleetDir, this.host);
    return this.snap;
  }

  // ---- handles ----------------------------------------------------------

  private roomForHandle(): void {
    if (this.handles.size >= MAX_HANDLES) throw failure(`too many open handles (max ${MAX_HANDLES})`);
  }

  private addHandle(h: Handle): Buffer {
    this.roomForHandle();
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
    if (h.kind === 'log') {
      h.usage.open.delete(h.name);
      this.opts.quotas.finished(this.host, h.usage, h.name);
    }
  }

  // ---- operations -------------------------------------------------------

  private async open(id: number, filename: string, flags: number): Promise<void> {
    const writing = (flags & (M.WRITE | M.APPEND | M.CREAT | M.TRUNC | M.EXCL)) !== 0;
    const parsed = parseVirtual(filename);
    // Writing is only ever creating a new log; anything else is refused before existence is even looked at.
    if (writing && parsed.kind !== 'log') throw denied(`${printable(filename, 120)} is read-only (only new files in logs/ can be written)`);
    const n = parsePath(filename);
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
    const { abs, st, root } = await configEntry(await this.snapshot(), n.rel);
    if (!st.isFile()) throw failure(`${describe(n)} is a directory`);
    await openInside(abs, root, (fh, fst) => {
      this.sftp.handle(id, this.addHandle({ kind: 'file', fh, size: fst.size, mtime: secs(fst.mtimeMs), exec: (fst.mode & 0o111) !== 0 }));
    });
  }

  private async openLog(id: number, name: string, flags: number): Promise<void> {
    checkLogOpen(name, flags);
    // Before creating anything: a log created for a handle that cannot exist
    // would stay marked open in the quota, never written and never pruned.
    this.roomForHandle();
    const { jailRoot } = await this.snapshot();
    const { fh, usage } = await createLog({ ...this.opts, host: this.host }, jailRoot, name);
    try {
      this.sftp.handle(id, this.addHandle({ kind: 'log', fh, name, size: 0, usage }));
    } catch (err) {
      usage.open.delete(name); // an empty log, counted and prunable like any other
      await fh.close();
      throw err;
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
    await writeLog(h, offset, data, this.opts.settings.logQuotaBytes);
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
    const n = parsePath(p);
    this.sftp.attrs(id, await attrsOf(await this.snapshot(), n));
  }

  private async opendir(id: number, p: string): Promise<void> {
    const n = parsePath(p);
    const entries = await listDir(await this.snapshot(), n);
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
