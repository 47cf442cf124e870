// One agent per state directory. Two agents on one stateDir (two configs that
// both keep the default, a second `bento-client run` by hand) would replay,
// acknowledge and overwrite each other's results and running-job markers.
//
// The lock is flock(2) on STATE/agent.lock, held through this process's own
// open file description. The kernel drops it when the process ends, however
// it ends (kill -9, OOM killer, a crash), so there is never a stale lock to
// judge, and no PID to check that a later process could have reused. Node has
// no flock(), so util-linux's flock(1) takes the lock on our descriptor
// (passed to it as fd 3) and exits: a flock lock belongs to the open file
// description, not to the process that asked, so it stays held until we close
// the descriptor. Node opens files close-on-exec, so the rebuilds the agent
// spawns never inherit it (a leftover nixos-rebuild cannot keep a restarted
// agent out). The file is never deleted: unlinking a lock file while another
// process waits on its old inode is how two holders happen.
//
// The JSON inside (PID, host, since) only makes the refusal message useful;
// the lock itself is the kernel's.
import { spawn } from 'node:child_process';
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { BentoError } from '../common/protocol/errors.js';
import { processAlive } from '../common/platform/process.js';

export const LOCK_FILE = 'agent.lock';

/**
 * Where flock(1) may be: PATH first; then the NixOS system profile (a unit
 * whose PATH lacks util-linux) and the usual FHS places.
 */
const FLOCK = ['flock', '/run/current-system/sw/bin/flock', '/usr/bin/flock', '/bin/flock'];
/** flock's exit status when the lock is held elsewhere (--conflict-exit-code). */
const CONFLICT = 75;

export interface StateLock {
  readonly file: string;
  /** Let go of the lock (the process ending does the same). Idempotent. */
  release(): void;
}

export interface LockOptions {
  stateDir: string;
  /** Written into the lock file beside the PID, for the message a second agent prints. */
  host: string;
  /** flock(1) candidates, first found wins (tests). */
  flock?: string[];
}

/** Who holds the lock, as the holder wrote it. */
export interface LockHolder { pid: number; host?: string; since?: string }
/** visible: false when the PID is no process seen from here (another PID namespace, e.g. a container sharing the directory). */
type ReadHolder = LockHolder & { visible: boolean };

/** Take STATE/agent.lock or throw STATE_DIR_LOCKED naming the directory and the holder's PID. */
export async function lockStateDir(o: LockOptions): Promise<StateLock> {
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(o.stateDir, LOCK_FILE);
  // O_NOFOLLOW: the file we lock and write is the one in the directory, never a link's target.
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new BentoError('CONFIG_INVALID', `cannot open the state directory's lock file ${file}: ${(err as Error).message}`);
  }
  let locked = false;
  try {
    const status = await runFlock(fd, o.flock ?? FLOCK);
    if (status === CONFLICT) {
      const holder = await readHolder(file);
      const who = holder
        ? `PID ${holder.pid}${holder.host ? ` (host "${holder.host}")` : ''}${holder.visible ? '' : ', as recorded in the lock file (no such process is visible here)'}`
        : 'another process (its PID is not recorded yet)';
      throw new BentoError('STATE_DIR_LOCKED', `state directory ${o.stateDir} is in use by ${who}: two agents must not share a stateDir (give each its own "stateDir", or stop the other agent)`);
    }
    const info: LockHolder = { pid: process.pid, host: o.host, since: new Date().toISOString() };
    ftruncateSync(fd, 0);
    writeSync(fd, `${JSON.stringify(info)}\n`, 0);
    locked = true;
  } finally {
    if (!locked) closeSync(fd);
  }
  let open = true;
  return {
    file,
    release: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}

/** Run flock(1) on fd (as its fd 3): 0 = ours now, CONFLICT = held elsewhere; anything else throws. */
async function runFlock(fd: number, candidates: string[]): Promise<number> {
  const missing: string[] = [];
  for (const bin of candidates) {
    const r = await new Promise<{ status: number | null; stderr: string; enoent: boolean }>((resolve) => {
      const child = spawn(bin, ['--exclusive', '--nonblock', '--conflict-exit-code', String(CONFLICT), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => { if (stderr.length < 4096) stderr += c.toString('utf8'); });
      child.once('error', (err: NodeJS.ErrnoException) => resolve({ status: null, stderr: err.message, enoent: err.code === 'ENOENT' }));
      child.once('close', (status) => resolve({ status, stderr, enoent: false }));
    });
    if (r.enoent) { missing.push(bin); continue; }
    if (r.status === 0 || r.status === CONFLICT) return r.status;
    throw new BentoError('INTERNAL', `cannot lock the state directory: ${bin} exited with ${r.status ?? 'an error'}: ${r.stderr.trim()}`);
  }
  throw new BentoError('CONFIG_INVALID', `cannot lock the state directory: flock (util-linux) not found (tried ${missing.join(', ')}); put util-linux on the agent's PATH`);
}

/**
 * The holder writes its PID right after it takes the lock, so a reader can
 * see an empty file or a previous holder's PID for a moment: read again
 * (bounded) until the PID names a live process.
 */
async function readHolder(file: string): Promise<ReadHolder | null> {
  let last: ReadHolder | null = null;
  for (let i = 0; i < 20; i++) {
    try {
      const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
      if (typeof h.pid === 'number' && Number.isSafeInteger(h.pid) && h.pid > 0) {
        last = { pid: h.pid, ...(typeof h.host === 'string' ? { host: h.host } : {}), ...(typeof h.since === 'string' ? { since: h.since } : {}), visible: processAlive(h.pid) };
        if (last.visible) return last;
      }
    } catch { /* empty or being written */ }
    await new Promise((r) => setTimeout(r, 25));
  }
  return last;
}
