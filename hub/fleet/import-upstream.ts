// Reads an upstream Bento directory (github.com/rapenne-s/bento: hosts/,
// fleet.nix, config.sh) so `bento-hub import` can register its hosts and copy
// their configurations into a fleet. Upstream keeps each host's public key in
// fleet.nix, as the sftp chroot user's authorized key; those keys are read from
// the Nix text without evaluating it (no nixpkgs needed, nothing executed).
import { access, chmod, copyFile, lstat, mkdir, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { BentoError } from '../../common/protocol/errors.js';

export interface UpstreamSettings {
  /** CHROOT_DIR: where upstream's sftp server serves NAME/config and NAME/logs. */
  chrootDir: string;
  /** REMOTE_IP / REMOTE_PORT / TIMEOUT: how the hosts reach that server. */
  remoteHost: string | null;
  remotePort: number;
  timeoutS: number;
}

export interface UpstreamHostDir {
  /** Directory name under hosts/. */
  dir: string;
  kind: 'flake' | 'configuration' | 'unknown';
  /** Host names it defines: the directory name, or a flake's nixosConfigurations as far as a text scan finds them. */
  hosts: string[];
}

export interface UpstreamUser { name: string; keys: string[] }

export interface UpstreamFleet {
  root: string;
  settings: UpstreamSettings;
  fleetFile: string | null;
  users: UpstreamUser[];
  hostDirs: UpstreamHostDir[];
  warnings: string[];
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

export async function readUpstreamFleet(root: string, fleetFileFlag?: string): Promise<UpstreamFleet> {
  const r = path.resolve(root);
  const hostsDir = path.join(r, 'hosts');
  if (!(await exists(hostsDir))) {
    throw new BentoError('USAGE', `${r} is not an upstream Bento directory: it has no hosts/ (upstream's \`bento init\` layout: hosts/, config.sh, fleet.nix)`);
  }
  const warnings: string[] = [];
  let vars: Record<string, string> = {};
  const configSh = path.join(r, 'config.sh');
  if (await exists(configSh)) vars = parseShellVars(await readFile(configSh, 'utf8'));
  else warnings.push(`${configSh} not found: upstream's defaults assumed (CHROOT_DIR=/home/chroot, REMOTE_PORT=22)`);
  const settings: UpstreamSettings = {
    chrootDir: vars['CHROOT_DIR'] || '/home/chroot',
    remoteHost: vars['REMOTE_IP'] || null,
    remotePort: /^\d+$/.test(vars['REMOTE_PORT'] ?? '') ? Number(vars['REMOTE_PORT']) : 22,
    timeoutS: /^\d+$/.test(vars['TIMEOUT'] ?? '') ? Number(vars['TIMEOUT']) : 20,
  };

  // `bento init` writes fleet.nix at the top; upstream's README says utils/fleet.nix.
  const candidates = fleetFileFlag ? [path.resolve(fleetFileFlag)] : [path.join(r, 'fleet.nix'), path.join(r, 'utils', 'fleet.nix')];
  let fleetFile: string | null = null;
  for (const c of candidates) if (!fleetFile && (await exists(c))) fleetFile = c;
  if (fleetFileFlag && !fleetFile) throw new BentoError('USAGE', `--fleet-file ${fleetFileFlag}: not found`);
  let users: UpstreamUser[] = [];
  if (fleetFile) {
    users = await readFleetUsers(fleetFile);
    if (users.length === 0) warnings.push(`${fleetFile}: no { username = "..."; key = "..."; } entries found`);
  } else {
    warnings.push('no fleet.nix found (looked for fleet.nix and utils/fleet.nix; use --fleet-file): no keys to import');
  }

  const hostDirs: UpstreamHostDir[] = [];
  for (const e of (await readdir(hostsDir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = path.join(hostsDir, e.name);
    if (e.name.startsWith('.') || !(e.isDirectory() || (e.isSymbolicLink() && (await isDir(dir))))) continue;
    if (await exists(path.join(dir, 'flake.nix'))) {
      const hosts = flakeHostNames(await readFile(path.join(dir, 'flake.nix'), 'utf8'));
      if (hosts.length === 0) warnings.push(`hosts/${e.name}/flake.nix: no nixosConfigurations names found by a text scan; its hosts come from fleet.nix only`);
      hostDirs.push({ dir: e.name, kind: 'flake', hosts });
    } else {
      const kind = (await exists(path.join(dir, 'configuration.nix'))) ? 'configuration' : 'unknown';
      if (kind === 'unknown') warnings.push(`hosts/${e.name}: neither flake.nix nor configuration.nix`);
      hostDirs.push({ dir: e.name, kind, hosts: [e.name] });
    }
  }
  return { root: r, settings, fleetFile, users, hostDirs, warnings };
}

const isDir = (p: string): Promise<boolean> => stat(p).then((st) => st.isDirectory(), () => false);

/** VAR=value lines of a POSIX shell file (config.sh); quotes removed, nothing executed. */
export function parseShellVars(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!.trim();
    const q = /^(["'])(.*)\1/.exec(v);
    v = q ? q[2]! : v.replace(/\s+#.*$/, '');
    out[m[1]!] = v;
  }
  return out;
}

// ---- a small Nix text scanner: comments removed, string bodies blanked (so
// braces inside strings do not count) and kept aside by offset.

interface Scanned { code: string; strings: Map<number, string>; blocks: Array<[number, number]> }

export function scanNix(src: string): Scanned {
  const code = src.split('');
  const strings = new Map<number, string>();
  const blank = (a: number, b: number): void => { for (let k = a; k < b; k++) if (code[k] !== '\n') code[k] = ' '; };
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '#') {
      const end = src.indexOf('\n', i);
      blank(i, end === -1 ? src.length : end);
      i = end === -1 ? src.length : end;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end === -1 ? src.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      strings.set(i, src.slice(i + 1, j).replace(/\\(.)/g, '$1'));
      blank(i + 1, j);
      i = j + 1;
    } else if (c === "'" && src[i + 1] === "'") {
      let j = i + 2;
      while (j < src.length && !(src.startsWith("''", j) && !["'", '$', '\\'].includes(src[j + 2] ?? ''))) j += src.startsWith("''", j) ? 3 : 1;
      strings.set(i, src.slice(i + 2, j));
      blank(i + 2, j);
      i = j + 2;
    } else i++;
  }
  const text = code.join('');
  const blocks: Array<[number, number]> = [];
  const stack: number[] = [];
  for (let k = 0; k < text.length; k++) {
    if (text[k] === '{') stack.push(k);
    else if (text[k] === '}' && stack.length) blocks.push([stack.pop()!, k]);
  }
  return { code: text, strings, blocks };
}

const KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/=]+/;

/** String literals in code[from..to) that look like OpenSSH public keys. */
function keysIn(s: Scanned, from: number, to: number): string[] {
  const out: string[] = [];
  for (const [at, v] of s.strings) if (at >= from && at < to && KEY_RE.test(v.trim())) out.push(v.trim());
  return out;
}

/**
 * Hosts and keys of an upstream fleet.nix: the template's
 * `{ username = "NAME"; key = "ssh-..."; }` entries (or `keys = [ ... ]`),
 * and hand-written `users.users.NAME = { openssh.authorizedKeys.keys = [ ... ]; }`.
 * `keyFiles = [ ./x.pub ]` next to them is read relative to the file.
 */
export async function readFleetUsers(file: string): Promise<UpstreamUser[]> {
  const src = await readFile(file, 'utf8');
  const s = scanNix(src);
  const byName = new Map<string, string[]>();
  const add = async (name: string | undefined, from: number, to: number): Promise<void> => {
    if (!name || name.includes('${')) return;
    const keys = keysIn(s, from, to);
    for (const m of s.code.slice(from, to).matchAll(/keyFiles\s*=\s*\[([^\]]*)\]/g)) {
      for (const p of m[1]!.trim().split(/\s+/).filter((x) => /^\.{0,2}\//.test(x))) {
        const text = await readFile(path.resolve(path.dirname(file), p), 'utf8').catch(() => '');
        keys.push(...text.split('\n').map((l) => l.trim()).filter((l) => KEY_RE.test(l)));
      }
    }
    byName.set(name, [...new Set([...(byName.get(name) ?? []), ...keys])]);
  };
  const stringAfter = (from: number, to: number, attr: string): string | undefined => {
    const m = new RegExp(`(?:^|[^A-Za-z0-9_.'-])${attr}\\s*=\\s*"`).exec(s.code.slice(from, to));
    return m ? s.strings.get(from + m.index + m[0].length - 1) : undefined;
  };
  // The innermost blocks holding a `username`: an attrset that merely
  // contains the users list must not claim all their keys.
  const withUser = s.blocks.filter(([o, c]) => stringAfter(o, c, 'username') !== undefined);
  for (const [open, close] of withUser) {
    if (withUser.some(([o, c]) => o > open && c < close)) continue;
    await add(stringAfter(open, close, 'username'), open, close);
  }
  for (const m of s.code.matchAll(/users\.users\.(?:"\s*"|([A-Za-z0-9_-]+))\s*=\s*\{/g)) {
    const open = m.index + m[0].length - 1;
    const block = s.blocks.find(([o]) => o === open);
    const name = m[1] ?? s.strings.get(m.index + 'users.users.'.length);
    if (block) await add(name, open, block[1]);
  }
  return [...byName].map(([name, keys]) => ({ name, keys }));
}

/** nixosConfigurations names in a flake.nix, as far as a text scan can see them. */
export function flakeHostNames(src: string): string[] {
  const s = scanNix(src);
  const names = new Set<string>();
  const nameAt = (m: RegExpMatchArray, group: number, quoteAt: number): string | undefined => m[group] ?? s.strings.get(quoteAt);
  for (const m of s.code.matchAll(/nixosConfigurations\.(?:"\s*"|([A-Za-z0-9_'-]+))\s*=/g)) {
    const n = nameAt(m, 1, m.index + 'nixosConfigurations.'.length);
    if (n) names.add(n);
  }
  for (const m of s.code.matchAll(/nixosConfigurations\s*=\s*\{/g)) {
    const open = m.index + m[0].length - 1;
    const block = s.blocks.find(([o]) => o === open);
    if (!block) continue;
    // Attribute names at depth 1: blank nested blocks, then look for `NAME =`.
    const inner = s.code.slice(open + 1, block[1]).split('');
    for (const [o, c] of s.blocks) if (o > open && c < block[1]) for (let k = o - open; k < c - open - 1; k++) inner[k] = ' ';
    const flat = inner.join('');
    for (const a of flat.matchAll(/(?:^|[;{])\s*(?:"\s*"|([A-Za-z_][A-Za-z0-9_'-]*))\s*=(?!=)/g)) {
      const quote = open + 1 + a.index + a[0].indexOf('"');
      const n = a[1] ?? s.strings.get(quote);
      if (n && n !== 'inherit') names.add(n);
    }
  }
  return [...names].sort();
}

export interface CopyResult { files: number; skipped: string[]; outside: string[] }

const MAX_FILES = 100_000;

/**
 * Copy a host directory into the fleet, dereferencing symlinks (upstream's
 * `utils -> ../../utils`) so the copy is self-contained, as upstream's
 * `rsync -L` did. Links into /nix/store (`result`), dangling links and loops
 * are skipped; links leaving the upstream tree are followed but reported.
 * The copy is staged next to `dest` and renamed into place, so a failed
 * import never leaves a half-copied host. write=false only counts.
 */
export async function copyHostDir(src: string, dest: string, upstreamRoot: string, write: boolean): Promise<CopyResult> {
  const res: CopyResult = { files: 0, skipped: [], outside: [] };
  const root = await realpath(upstreamRoot);
  const stage = `${path.dirname(dest)}/.import-${path.basename(dest)}-${process.pid}-${Date.now()}`;
  const walk = async (from: string, to: string, chain: string[], rel: string): Promise<void> => {
    if (write) await mkdir(to, { mode: 0o755 });
    for (const e of (await readdir(from, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(from, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      let real: string;
      try {
        real = await realpath(p);
      } catch {
        res.skipped.push(`${r} (dangling symlink)`);
        continue;
      }
      if (real.startsWith('/nix/store/')) { res.skipped.push(`${r} (points into /nix/store)`); continue; }
      if (e.isSymbolicLink() && real !== root && !real.startsWith(`${root}/`)) res.outside.push(`${r} -> ${real}`);
      const st = await stat(real);
      if (st.isDirectory()) {
        if (chain.includes(real)) { res.skipped.push(`${r} (symlink loop)`); continue; }
        await walk(real, path.join(to, e.name), [...chain, real], r);
      } else if (st.isFile()) {
        if (++res.files > MAX_FILES) throw new BentoError('USAGE', `${src}: more than ${MAX_FILES} files; is a symlink pulling in a whole tree?`);
        if (write) {
          await copyFile(real, path.join(to, e.name));
          await chmod(path.join(to, e.name), st.mode & 0o755);
        }
      } else res.skipped.push(`${r} (not a regular file or directory)`);
    }
  };
  try {
    if ((await lstat(src)).isSymbolicLink() && !(await realpath(src)).startsWith(`${root}/`)) res.outside.push(`. -> ${await realpath(src)}`);
    await walk(await realpath(src), stage, [await realpath(src)], '');
    if (write) await rename(stage, dest);
  } catch (err) {
    if (write) await rm(stage, { recursive: true, force: true });
    throw err;
  }
  return res;
}
