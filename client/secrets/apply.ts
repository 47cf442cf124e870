// Land a secrets bundle on the host (issue 9), outside the Nix store:
// secretsDir (default /run/bento-secrets, a tmpfs on NixOS) is a symlink to
// secretsDir.d/VERSION/. A new version is written into a fresh directory
// (files created 0600, then chown'ed and chmod'ed to the declared owner,
// group and mode), and the symlink is replaced by rename(2): readers see the
// old set or the new set, never a mix. Older versions are then removed.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const SECRETS_SUBSYSTEM = 'bento-secrets@1';

export interface SecretFile { name: string; owner: string; group: string; mode: number; data: string }
export interface SecretBundle { version: string; files: SecretFile[] }

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const VERSION_RE = /^(?:none|[0-9a-f]{32})$/;

export function validateBundle(raw: unknown): SecretBundle {
  const o = raw as { ok?: unknown; error?: unknown; version?: unknown; files?: unknown };
  if (o?.ok === false) throw new Error(`hub: ${String(o.error)}`);
  if (typeof o?.version !== 'string' || !VERSION_RE.test(o.version) || !Array.isArray(o.files)) throw new Error('malformed secrets bundle');
  for (const f of o.files as SecretFile[]) {
    if (!NAME_RE.test(f?.name ?? '') || typeof f.owner !== 'string' || typeof f.group !== 'string'
      || !Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o777 || typeof f.data !== 'string') throw new Error('malformed secret entry');
  }
  return o as SecretBundle;
}

async function resolveId(db: 'passwd' | 'group', name: string): Promise<number> {
  if (/^[0-9]+$/.test(name)) return Number(name);
  const { stdout } = await execFileP('getent', [db, name]).catch(() => ({ stdout: '' }));
  const id = stdout.split(':')[2];
  if (!id || !/^[0-9]+$/.test(id)) throw new Error(`unknown ${db === 'passwd' ? 'user' : 'group'} ${JSON.stringify(name)}`);
  return Number(id);
}

/** The version currently in place, or null. */
export async function appliedVersion(secretsDir: string): Promise<string | null> {
  const target = await readlink(secretsDir).catch(() => null);
  return target ? path.basename(target) : null;
}

/** Apply BUNDLE; false when that version is already in place. */
export async function applyBundle(secretsDir: string, bundle: SecretBundle): Promise<boolean> {
  const current = await appliedVersion(secretsDir);
  if (current === bundle.version) return false;
  // No secrets and none ever delivered: touch nothing (most hosts).
  if (bundle.version === 'none' && current === null) return false;
  const store = `${secretsDir}.d`;
  await mkdir(store, { recursive: true, mode: 0o711 });
  await chmod(store, 0o711);
  const tmp = path.join(store, `.tmp-${randomBytes(6).toString('hex')}`);
  await mkdir(tmp, { mode: 0o755 });
  try {
    for (const f of bundle.files) {
      const [uid, gid] = [await resolveId('passwd', f.owner), await resolveId('group', f.group)];
      const file = path.join(tmp, f.name);
      const fh = await open(file, 'wx', 0o600);
      try {
        await fh.writeFile(Buffer.from(f.data, 'base64'));
        await fh.chown(uid, gid);
        await fh.chmod(f.mode);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    await chmod(tmp, 0o755);
    const dest = path.join(store, bundle.version);
    await rm(dest, { recursive: true, force: true });
    await rename(tmp, dest);
    // Atomic switch: a new symlink renamed over the old one.
    const link = path.join(path.dirname(secretsDir), `.${path.basename(secretsDir)}.link-${randomBytes(4).toString('hex')}`);
    await symlink(dest, link);
    const cur = await lstat(secretsDir).catch(() => null);
    if (cur && !cur.isSymbolicLink()) await rm(secretsDir, { recursive: true, force: true }); // first run over a plain dir
    await rename(link, secretsDir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  for (const old of await readdir(store)) {
    if (old !== bundle.version) await rm(path.join(store, old), { recursive: true, force: true });
  }
  return true;
}
