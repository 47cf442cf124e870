// Log uploads into the jail: each host may only create new files with plain
// names in its logs/ directory (O_CREAT|O_EXCL|O_NOFOLLOW), and write them
// within a per-host byte and file quota shared by all its sessions. The
// oldest finished logs are pruned so uploads keep working.
//
// In a cluster (a LogArchive, log-archive.ts) the quota is the host's across
// all hubs: before each new log the host's archived logs are counted in (and
// pruned from the archive when the oldest must go), and every finished upload
// moves into the archive, retried until it lands, so `logs` at any hub shows it.
// A log the archive refuses for a reason of its own backs off alone, behind
// the others: only NATS being unreachable stops a round (found by review: one
// hostile host's unstorable log held up every host's logs at its hub).
import { constants as C } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, realpath, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { isHostName, printable } from '../../common/protocol/names.js';
import { jailsDir } from '../publish/layout.js';
import type { PublishSettings } from '../publish/settings.js';
import type { LogArchive } from './log-archive.js';
import { LOG_NAME_RE } from './vpath.js';
import { M, denied, failure } from './replies.js';

/** Per-host log usage, shared by all of that host's sessions. */
export class LogUsage {
  bytes = 0;
  files = new Map<string, number>();
  open = new Set<string>();
  /** Names only the cluster's archive holds (other hubs' uploads, or ours moved there): counted, not in logs/. */
  remote = new Set<string>();
  constructor(readonly dir: string) {}
}

/** An open log: what a session's handle holds. */
export interface LogHandle { kind: 'log'; fh: FileHandle; name: string; size: number; usage: LogUsage }

export interface LogQuotaOptions {
  /** The cluster's log archive; absent on the embedded hub. */
  archive?: LogArchive;
  settings: PublishSettings;
  log: Logger;
  /** Moves into the archive that failed are tried again this often. Default 10 s. */
  retryMs?: number;
}

/** A log the archive refused (not for being unreachable) waits at most this long before its next try. */
const MAX_LOG_BACKOFF_MS = 15 * 60_000;

/** A log waiting to move; `failures` and `notBefore`: its own backoff after the archive refused it. */
interface Unshipped { host: string; name: string; file: string; failures: number; notBefore: number }

/** Every host's usage, counted from its logs/ directory (and the archive) the first time it is needed. */
export class LogQuotas {
  private readonly usage = new Map<string, Promise<LogUsage>>();
  private readonly unshipped = new Map<string, Unshipped>();
  private timer: NodeJS.Timeout | null = null;
  private shipping: Promise<void> | null = null;
  private closed = false;
  private readonly lastWarned = new Map<'unavailable' | 'refused', number>();

  constructor(private readonly o: LogQuotaOptions | null = null) {}

  get archive(): LogArchive | undefined {
    return this.o?.archive;
  }

  forHost(host: string, logsDir: string): Promise<LogUsage> {
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

  /** With an archive: count HOST's archived logs into USAGE (what other hubs took, what was moved there). */
  async syncRemote(host: string, usage: LogUsage): Promise<void> {
    const archive = this.o?.archive;
    if (!archive) return;
    let remote: Map<string, number>;
    try {
      remote = await archive.list(host);
    } catch (err) {
      this.warn('unavailable', { host, err: (err as Error).message }, 'cannot read the cluster\'s log archive; counting the logs last seen there');
      return;
    }
    for (const n of [...usage.remote]) {
      if (remote.has(n)) continue;
      usage.bytes -= usage.files.get(n) ?? 0;
      usage.files.delete(n);
      usage.remote.delete(n);
    }
    for (const [n, size] of remote) {
      if (usage.files.has(n) && !usage.remote.has(n)) continue; // still in logs/ here (being moved): counted once
      usage.bytes += size - (usage.files.get(n) ?? 0);
      usage.files.set(n, size);
      usage.remote.add(n);
    }
  }

  /** An upload was closed: with an archive, move it there (retried until it lands). */
  finished(host: string, usage: LogUsage, name: string): void {
    if (!this.o?.archive || this.closed) return;
    this.unshipped.set(`${host}/${name}`, { host, name, file: path.join(usage.dir, name), failures: 0, notBefore: 0 });
    this.kick(0);
  }

  /** At hub start, with an archive: move every log a previous run left in the jails' logs/. Returns how many were found. */
  async scan(fleetDir: string): Promise<number> {
    if (!this.o?.archive) return 0;
    let found = 0;
    const root = jailsDir(fleetDir);
    for (const host of await readdir(root).catch(() => [] as string[])) {
      if (!isHostName(host)) continue;
      const dir = path.join(root, host, 'logs');
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (!LOG_NAME_RE.test(name) || !(await lstat(path.join(dir, name)).catch(() => null))?.isFile()) continue;
        this.unshipped.set(`${host}/${name}`, { host, name, file: path.join(dir, name), failures: 0, notBefore: 0 });
        found++;
      }
    }
    if (found) this.kick(0);
    return found;
  }

  /** Stop moving logs (those not moved stay in logs/ for the next start). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.shipping;
  }

  private kick(delayMs: number): void {
    if (this.closed || this.shipping || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.shipping = this.shipAll().finally(() => {
        this.shipping = null;
        if (this.unshipped.size > 0) this.kick(this.o?.retryMs ?? 10_000);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async shipAll(): Promise<void> {
    for (const [key, u] of [...this.unshipped]) {
      if (this.closed) return;
      if (u.notBefore > Date.now()) continue; // refused before: its own backoff
      const usage = await this.usage.get(u.host)?.catch(() => undefined);
      if (usage?.open.has(u.name)) continue; // still being written (a new upload of a name left over)
      try {
        await this.o!.archive!.store(u.host, u.name, u.file, { quotaBytes: this.o!.settings.logQuotaBytes, maxFiles: this.o!.settings.logMaxFiles });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') { this.unshipped.delete(key); continue; } // pruned meanwhile
        if (err instanceof BentoError && err.code === 'CLUSTER_UNAVAILABLE') {
          this.warn('unavailable', { host: u.host, log: u.name, err: err.message }, 'cannot move an uploaded log into the cluster\'s archive; it stays here and is tried again');
          return; // the archive does not answer: the rest waits for the next round
        }
        // Refused for a reason of this log's own (its host's manifest too large, an unreadable file):
        // it waits longer each time, behind every other log, which keep moving.
        u.failures += 1;
        u.notBefore = Date.now() + Math.min(MAX_LOG_BACKOFF_MS, (this.o!.retryMs ?? 10_000) * 2 ** Math.min(u.failures - 1, 20));
        this.unshipped.delete(key);
        this.unshipped.set(key, u);
        this.warn('refused', { host: u.host, log: u.name, failures: u.failures, err: (err as Error).message }, 'the cluster\'s archive refused an uploaded log; it stays here and is tried again later, after the others');
        continue;
      }
      this.unshipped.delete(key);
      await unlink(u.file).catch(() => undefined);
      if (usage?.files.has(u.name)) usage.remote.add(u.name);
    }
  }

  /** One warning of each kind per minute at most: an unreachable archive, or a host's refused logs, must not flood the log. */
  private warn(kind: 'unavailable' | 'refused', fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - (this.lastWarned.get(kind) ?? 0) < 60_000) return;
    this.lastWarned.set(kind, now);
    this.o?.log.warn(fields, msg);
  }
}

export interface LogContext {
  fleetDir: string;
  settings: PublishSettings;
  log: Logger;
  host: string;
  quotas: LogQuotas;
}

/** The open flags and name a log upload must have; anything else is refused before the disk is looked at. */
export function checkLogOpen(name: string, flags: number): void {
  if (!LOG_NAME_RE.test(name)) throw denied(`log name ${printable(name, 80)} is not allowed (letters, digits, . _ + = -)`);
  if (flags & M.READ) throw denied('logs/ is write-only');
  if (flags & M.APPEND) throw denied('logs/ is create-only: no appending');
  if (!(flags & M.CREAT)) throw denied('logs/ is create-only: open with CREAT');
}

/** Create logs/NAME in the host's jail (jailRoot, or jails/HOST when it does not exist yet), counted in its quota. */
export async function createLog(ctx: LogContext, jailRoot: string | null, name: string): Promise<{ fh: FileHandle; usage: LogUsage }> {
  const { settings } = ctx;
  const realJails = await realpath(jailsDir(ctx.fleetDir)).catch(async () => {
    await mkdir(jailsDir(ctx.fleetDir), { recursive: true, mode: 0o755 });
    return realpath(jailsDir(ctx.fleetDir));
  });
  const root = jailRoot ?? path.join(realJails, ctx.host);
  const logsDir = path.join(root, 'logs');
  await mkdir(logsDir, { recursive: true, mode: 0o700 });
  const ls = await lstat(logsDir);
  if (!ls.isDirectory() || (await realpath(logsDir)) !== logsDir) throw failure('logs directory is not usable');
  const usage = await ctx.quotas.forHost(ctx.host, logsDir);
  await ctx.quotas.syncRemote(ctx.host, usage);
  if (usage.files.has(name)) throw denied(`logs/${name} exists; logs are create-only`);
  await prune(usage, settings, ctx.quotas.archive, ctx);
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
    ctx.log.error({ host: ctx.host, name }, 'a log file opened somewhere else than its jail; refusing');
    throw failure('logs directory is not usable');
  }
  usage.files.set(name, 0);
  usage.open.add(name);
  return { fh, usage };
}

/** Write into an open log, refused when the file or the host's logs would pass `quota` bytes. */
export async function writeLog(h: LogHandle, offset: number, data: Buffer, quota: number): Promise<void> {
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
}

/** Drop the oldest finished logs once a host uses half its quota, so uploads keep working (archived ones too, in a cluster). */
async function prune(usage: LogUsage, s: PublishSettings, archive: LogArchive | undefined, ctx: Pick<LogContext, 'host' | 'log'>): Promise<void> {
  if (usage.bytes <= s.logQuotaBytes / 2 && usage.files.size < s.logMaxFiles) return;
  const names = [...usage.files.keys()].filter((n) => !usage.open.has(n)).sort();
  const archived: string[] = [];
  for (const name of names) {
    if (usage.bytes <= s.logQuotaBytes / 2 && usage.files.size < s.logMaxFiles) break;
    if (usage.remote.has(name)) archived.push(name);
    else await unlink(path.join(usage.dir, name)).catch(() => undefined);
    usage.bytes -= usage.files.get(name) ?? 0;
    usage.files.delete(name);
    usage.remote.delete(name);
  }
  // If the archive cannot drop them now, they count again at the next sync and the quota refuses what does not fit.
  if (archived.length && archive) {
    await archive.remove(ctx.host, archived).catch((err: unknown) => ctx.log.warn({ host: ctx.host, err: (err as Error).message }, 'cannot prune old logs in the cluster\'s archive'));
  }
}
