// Log uploads into the jail: each host may only create new files with plain
// names in its logs/ directory (O_CREAT|O_EXCL|O_NOFOLLOW), and write them
// within a per-host byte and file quota shared by all its sessions. The
// oldest finished logs are pruned so uploads keep working.
import { constants as C } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, realpath, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/platform/log.js';
import { printable } from '../../common/protocol/names.js';
import { jailsDir } from '../publish/layout.js';
import type { PublishSettings } from '../publish/settings.js';
import { LOG_NAME_RE } from './vpath.js';
import { M, denied, failure } from './replies.js';

/** Per-host log usage, shared by all of that host's sessions. */
export class LogUsage {
  bytes = 0;
  files = new Map<string, number>();
  open = new Set<string>();
  constructor(readonly dir: string) {}
}

/** An open log: what a session's handle holds. */
export interface LogHandle { kind: 'log'; fh: FileHandle; name: string; size: number; usage: LogUsage }

/** Every host's usage, counted from its logs/ directory the first time it is needed. */
export class LogQuotas {
  private readonly usage = new Map<string, Promise<LogUsage>>();

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
  if (usage.files.has(name)) throw denied(`logs/${name} exists; logs are create-only`);
  await prune(usage, settings);
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

/** Drop the oldest finished logs once a host uses half its quota, so uploads keep working. */
async function prune(usage: LogUsage, s: PublishSettings): Promise<void> {
  if (usage.bytes <= s.logQuotaBytes / 2 && usage.files.size < s.logMaxFiles) return;
  const names = [...usage.files.keys()].filter((n) => !usage.open.has(n)).sort();
  for (const name of names) {
    if (usage.bytes <= s.logQuotaBytes / 2 && usage.files.size < s.logMaxFiles) break;
    await unlink(path.join(usage.dir, name)).catch(() => undefined);
    usage.bytes -= usage.files.get(name) ?? 0;
    usage.files.delete(name);
  }
}
