// STATE/pull/logs-outbox/: compressed job logs waiting for an upload to the
// hub's logs/. A hub that is down for long, or refuses every upload, must not
// let them fill the host's disk: the newest LOGS_OUTBOX_LIMITS are kept and
// every log dropped to stay under it is logged. Names start with a UTC
// timestamp (plugin.ts logName), so name order is age order.
import { lstat, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/platform/log.js';
import { overLimit, type SpoolLimits } from '../spool-cap.js';

/** 50 logs (as before) and 64 MiB: one log is at most 8 MiB before compression. */
export const LOGS_OUTBOX_LIMITS: SpoolLimits = { maxEntries: 50, maxBytes: 64 * 1024 * 1024 };

const STALE_TMP_MS = 10 * 60_000;

export interface QueueLogOptions {
  dir: string;
  name: string;
  gz: Buffer;
  log: Logger;
  limits?: SpoolLimits;
}

/** Queue one log, then drop the oldest until the outbox fits its limits. */
export async function queueLog(o: QueueLogOptions): Promise<void> {
  // Written under a dot name and renamed: the upload skips dot names, so it never sends half a log.
  const tmp = path.join(o.dir, `.${o.name}.tmp`);
  await writeFile(tmp, o.gz, { mode: 0o600 });
  await rename(tmp, path.join(o.dir, o.name));
  const limits = o.limits ?? LOGS_OUTBOX_LIMITS;
  const queued: Array<{ name: string; bytes: number }> = [];
  for (const name of (await readdir(o.dir)).sort()) {
    const st = await lstat(path.join(o.dir, name)).catch(() => null);
    if (!st?.isFile()) continue;
    if (!name.startsWith('.')) queued.push({ name, bytes: st.size });
    // A temp file an agent killed mid-write left behind (a write takes milliseconds).
    else if (name.endsWith('.tmp') && Date.now() - st.mtimeMs > STALE_TMP_MS) await unlink(path.join(o.dir, name)).catch(() => undefined);
  }
  for (const old of overLimit(queued, limits)) {
    await unlink(path.join(o.dir, old.name)).catch(() => undefined);
    o.log.warn({ log: old.name, bytes: old.bytes, queued: queued.length, ...limits }, 'logs-outbox full (logs not uploaded to the hub): dropped the oldest');
  }
}
