// A host's secrets (issue 9): hosts/NAME/secrets/ (or hub.json
// "secretsDir"/NAME/), delivered separately from the configuration and never
// published (hub/publish/snapshot.ts skips a host tree's top-level secrets/).
// Plain regular files only, no subdirectories, no symlinks. An optional
// manifest.json declares owner, group and mode per file:
//   { "files": { "db-password": { "owner": "postgres", "group": "postgres", "mode": "0400" } } }
// Undeclared files are root:root 0400. The version is a hash of names,
// metadata and contents, so rotation (changed content) is a new version.
import { createHash } from 'node:crypto';
import { lstat, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { BentoError } from '../../common/protocol/errors.js';
import { fleetPaths, hostFile } from '../fleet/paths.js';

export const SECRETS_SUBSYSTEM = 'bento-secrets@1';
export const MANIFEST = 'manifest.json';
export const MAX_SECRET_BYTES = 1024 * 1024;
export const MAX_SECRET_FILES = 256;
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const ID_RE = /^(?:[0-9]{1,10}|[a-z_][a-z0-9_-]{0,31})$/;

export interface SecretFile { name: string; owner: string; group: string; mode: number; data: string /* base64 */ }
export interface SecretBundle { version: string; files: SecretFile[] }

export function secretsDirFor(fleetDir: string, host: string, root: string | null = null): string {
  return root ? hostFile(path.resolve(fleetDir, root), host, '') : path.join(hostFile(fleetPaths(fleetDir).hostsDir, host, ''), 'secrets');
}

/** The bundle for HOST, or an empty bundle when it has no secrets directory. */
export async function readSecretBundle(dir: string): Promise<SecretBundle> {
  const bad = (msg: string): never => { throw new BentoError('CONFIG_INVALID', `${dir}: ${msg}`); };
  const st = await lstat(dir).catch(() => null);
  if (!st) return seal([]);
  if (!st.isDirectory()) bad('not a directory (a symlink is refused)');
  let manifest: Record<string, { owner?: unknown; group?: unknown; mode?: unknown }> = {};
  const names = (await readdir(dir)).sort();
  if (names.includes(MANIFEST)) {
    try {
      const m = JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as { files?: unknown };
      if (m.files !== undefined && (typeof m.files !== 'object' || m.files === null || Array.isArray(m.files))) bad(`${MANIFEST}: "files" must be an object`);
      manifest = (m.files ?? {}) as typeof manifest;
    } catch (err) {
      if (err instanceof BentoError) throw err;
      bad(`${MANIFEST}: ${(err as Error).message}`);
    }
  }
  const files: SecretFile[] = [];
  let total = 0;
  for (const name of names) {
    if (name === MANIFEST || name.startsWith('.')) continue;
    if (!NAME_RE.test(name)) bad(`file name ${JSON.stringify(name)} is not allowed (letters, digits, "_", ".", "-")`);
    const fst = await lstat(path.join(dir, name));
    if (!fst.isFile()) bad(`${name}: only regular files are delivered (no symlinks or directories)`);
    const data = await readFile(path.join(dir, name));
    total += data.length;
    if (total > MAX_SECRET_BYTES) bad(`more than ${MAX_SECRET_BYTES} bytes of secrets`);
    if (files.length >= MAX_SECRET_FILES) bad(`more than ${MAX_SECRET_FILES} files`);
    const decl = manifest[name] ?? {};
    const owner = decl.owner === undefined ? 'root' : String(decl.owner);
    const group = decl.group === undefined ? 'root' : String(decl.group);
    if (!ID_RE.test(owner) || !ID_RE.test(group)) bad(`${MANIFEST}: ${name}: owner/group must be a user name or a number`);
    const modeStr = decl.mode === undefined ? '0400' : String(decl.mode);
    if (!/^0?[0-7]{3}$/.test(modeStr)) bad(`${MANIFEST}: ${name}: mode must be octal like "0440"`);
    const mode = parseInt(modeStr, 8);
    if (mode & 0o7002) bad(`${MANIFEST}: ${name}: mode ${modeStr} would make it world-writable or setuid; refused`);
    files.push({ name, owner, group, mode, data: data.toString('base64') });
  }
  for (const declared of Object.keys(manifest)) {
    if (!files.some((f) => f.name === declared)) bad(`${MANIFEST} declares ${JSON.stringify(declared)}, which does not exist`);
  }
  return seal(files);
}

function seal(files: SecretFile[]): SecretBundle {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.name}\0${f.owner}\0${f.group}\0${f.mode}\0${f.data}\0`);
  return { version: files.length ? h.digest('hex').slice(0, 32) : 'none', files };
}
