// The agent's side of the pull, on disk under STATE/pull/:
//
//   versions/HASH/      verified configuration trees (immutable once renamed in)
//   .staging-*          downloads in progress (removed at start)
//   state.json          what is installed and where it came from
//   applied.json        which config hash produced which system (for hello.configHash)
//   logs-outbox/        compressed job logs not yet uploaded
//
// configDir (default STATE/config) is a symlink to versions/HASH, replaced by
// an atomic rename, so a rebuild reading it sees one whole version or the other.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, readlink, rename, rm, symlink, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { writeJsonAtomic } from '../../common/platform/atomic.js';
import { BentoError } from '../../common/protocol/errors.js';
import { processAlive as alive } from '../../common/platform/process.js';

export interface PullState {
  /** The published hash the installed tree derives from (equal to installed unless flake inputs were updated here). */
  base: string | null;
  /** Hash of the tree configDir points at. */
  installed: string | null;
  /** Downloaded and verified, waiting for a trigger (autoApply off). */
  ready: string | null;
  /** Upstream layout: the last_change_date stamp the installed tree was fetched at. */
  upstreamStamp: string | null;
  /** Upstream layout: the stamp `ready` was fetched at. */
  readyStamp: string | null;
  lastCheckAt: string | null;
  lastFlakeUpdateAt: string | null;
}

export interface AppliedEntry {
  /** Published hash (what the hub compares against). */
  hash: string;
  /** Local tree hash, when flake inputs were updated here. */
  tree: string;
  /** The system the rebuild produced (switch/test: current system; boot: the profile). */
  system: string | null;
  at: string;
}

const EMPTY: PullState = { base: null, installed: null, ready: null, upstreamStamp: null, readyStamp: null, lastCheckAt: null, lastFlakeUpdateAt: null };
const HASH = /^[0-9a-f]{64}$/;

export class PullStore {
  readonly root: string;
  readonly versionsDir: string;
  readonly outboxDir: string;
  private readonly stateFile: string;
  private readonly appliedFile: string;

  constructor(stateDir: string, readonly configDir: string) {
    this.root = path.join(stateDir, 'pull');
    this.versionsDir = path.join(this.root, 'versions');
    this.outboxDir = path.join(this.root, 'logs-outbox');
    this.stateFile = path.join(this.root, 'state.json');
    this.appliedFile = path.join(this.root, 'applied.json');
  }

  async init(): Promise<void> {
    await mkdir(this.versionsDir, { recursive: true, mode: 0o700 });
    await mkdir(this.outboxDir, { recursive: true, mode: 0o700 });
    // Downloads left by a process that died (an agent or `bento-client pull` may run at once).
    for (const n of await readdir(this.root)) {
      if (!n.startsWith('.staging-')) continue;
      const pid = Number(n.split('-')[1]);
      if (!Number.isInteger(pid) || !alive(pid)) await rm(path.join(this.root, n), { recursive: true, force: true });
    }
  }

  async state(): Promise<PullState> {
    try {
      return { ...EMPTY, ...(JSON.parse(await readFile(this.stateFile, 'utf8')) as Partial<PullState>) };
    } catch {
      return { ...EMPTY };
    }
  }

  async saveState(patch: Partial<PullState>): Promise<PullState> {
    const next = { ...(await this.state()), ...patch };
    await writeJsonAtomic(this.stateFile, next, { mode: 0o600 });
    return next;
  }

  /** A fresh, empty staging path (not created). */
  stagingPath(): string {
    return path.join(this.root, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  versionPath(hash: string): string {
    if (!HASH.test(hash)) throw new BentoError('INTERNAL', 'not a content hash');
    return path.join(this.versionsDir, hash);
  }

  async has(hash: string): Promise<boolean> {
    return (await lstat(this.versionPath(hash)).catch(() => null))?.isDirectory() === true;
  }

  /** Move a verified staging tree into versions/HASH (dropping it if that exists). */
  async install(staging: string, hash: string): Promise<void> {
    const dest = this.versionPath(hash);
    if (await this.has(hash)) {
      await rm(staging, { recursive: true, force: true });
      const now = new Date();
      await utimes(dest, now, now);
      return;
    }
    await rename(staging, dest);
  }

  /** The hash configDir points at now, read from the link itself. */
  async linked(): Promise<string | null> {
    const t = await readlink(this.configDir).catch(() => null);
    if (!t) return null;
    const abs = path.resolve(path.dirname(this.configDir), t);
    return path.dirname(abs) === this.versionsDir && HASH.test(path.basename(abs)) ? path.basename(abs) : null;
  }

  /** Point configDir at versions/HASH with one atomic rename. */
  async swap(hash: string): Promise<void> {
    const target = this.versionPath(hash);
    const st = await lstat(this.configDir).catch(() => null);
    if (st && !st.isSymbolicLink()) {
      throw new BentoError('CONFIG_INVALID', `configDir ${this.configDir} exists and is not a symlink; bento only replaces the link it manages (move it away, or set "configDir" elsewhere)`);
    }
    await mkdir(path.dirname(this.configDir), { recursive: true });
    const tmp = `${this.configDir}.${randomBytes(4).toString('hex')}.tmp`;
    await symlink(target, tmp);
    try {
      await rename(tmp, this.configDir);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  /** Keep the linked version, the ready one and the newest others up to `keep` in all. */
  async gc(keep = 3): Promise<void> {
    const st = await this.state();
    const pinned = new Set([await this.linked(), st.ready, st.installed].filter((h): h is string => !!h));
    const rest: Array<{ name: string; mtime: number }> = [];
    for (const name of await readdir(this.versionsDir).catch(() => [] as string[])) {
      if (pinned.has(name)) continue;
      const s = await lstat(path.join(this.versionsDir, name)).catch(() => null);
      if (s) rest.push({ name, mtime: s.mtimeMs });
    }
    rest.sort((a, b) => b.mtime - a.mtime);
    for (const r of rest.slice(Math.max(0, keep - pinned.size))) await rm(path.join(this.versionsDir, r.name), { recursive: true, force: true });
  }

  async applied(): Promise<AppliedEntry[]> {
    try {
      const v = JSON.parse(await readFile(this.appliedFile, 'utf8')) as AppliedEntry[];
      return Array.isArray(v) ? v : [];
    } catch {
      return [];
    }
  }

  async recordApplied(e: AppliedEntry): Promise<void> {
    const list = (await this.applied()).filter((x) => !(x.system === e.system && x.system !== null));
    list.push(e);
    await writeJsonAtomic(this.appliedFile, list.slice(-20), { mode: 0o600 });
  }
}
