// A small advisory lock file (O_EXCL) for read-modify-write of fleet files by
// concurrent CLI invocations. Stale locks (owner pid gone) are broken, and
// waiting is bounded so a stuck lock yields a clear error, not a hang.
import { open, readFile, unlink } from 'node:fs/promises';
import { BentoError } from '../../common/protocol/errors.js';

export async function withLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(lockFile, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await isStale(lockFile)) {
        await unlink(lockFile).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new BentoError('INTERNAL', `could not take lock ${lockFile} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lockFile).catch(() => undefined);
  }
}

async function isStale(lockFile: string): Promise<boolean> {
  try {
    const pid = Number((await readFile(lockFile, 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return true;
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH' || (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}
