// A small advisory lock file for read-modify-write of fleet files by
// concurrent CLI invocations. Stale locks (owner pid gone) are broken, and
// waiting is bounded so a stuck lock yields a clear error, not a hang.
//
// The lock appears with its owner's pid already in it: the pid is written to
// a file of this process's own, which is then hard-linked to the lock's name
// (link fails if the name exists, like O_EXCL). Before, the lock was created
// empty and the pid written after: a process that found it in that moment
// read no pid, judged it stale, removed it and took the lock as well, and one
// of two `add-host` calls side by side was lost (found by the test fixtures
// registering hosts in parallel; unit fleet-lock). A stale lock is broken by
// renaming it aside first, so of several processes that judged it stale only
// one takes it; one that took a newer lock instead (the stale one was broken
// and the name taken again in between) puts it back. Left: if a third
// process takes the free name in the moment before it is put back, two hold
// the lock (three racing over a dead owner's lock; not seen in tests).
import { randomBytes } from 'node:crypto';
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { BentoError } from '../../common/protocol/errors.js';

/** A lock file without a readable pid (written by an older version, or a torn write) is stale only once this old. */
const UNREADABLE_STALE_MS = 10_000;

export async function withLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const mine = `${lockFile}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(mine, String(process.pid), { mode: 0o600 });
  try {
    for (;;) {
      try {
        await link(mine, lockFile);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (await breakIfStale(lockFile)) continue;
      if (Date.now() > deadline) throw new BentoError('INTERNAL', `could not take lock ${lockFile} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    await unlink(mine).catch(() => undefined);
  }
  try {
    return await fn();
  } finally {
    await unlink(lockFile).catch(() => undefined);
  }
}

/** True when the lock is gone or was broken here (try again); false while its owner lives. */
async function breakIfStale(lockFile: string): Promise<boolean> {
  let ino: number;
  try {
    const st = await stat(lockFile);
    ino = st.ino;
    const pid = Number((await readFile(lockFile, 'utf8')).trim());
    const stale = Number.isInteger(pid) && pid > 0 ? !alive(pid) : Date.now() - st.mtimeMs > UNREADABLE_STALE_MS;
    if (!stale) return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
  const aside = `${lockFile}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockFile, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true; // another process broke it first
    throw err;
  }
  if ((await stat(aside)).ino !== ino) {
    // A newer lock (its owner lives): back under its name, unless a third process took the name meanwhile.
    await link(aside, lockFile).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    return false;
  }
  await unlink(aside).catch(() => undefined);
  return true;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
