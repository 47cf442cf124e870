// The host registry: host name -> public keys, tags and ssh hints.
//
// Two seams, each with a file implementation (the embedded single hub, here)
// and a cluster one (hub/cluster/registry-nats.ts, a JetStream KV bucket):
//   - RegistryView: what the running hub reads (authentication, triggers,
//     status). File: registry.json, re-read when its mtime changes, so
//     `add-host` takes effect without restarting the daemon.
//   - RegistryStore: what the CLI edits (add-host, remove-host, host-keys).
//     File: registry.json under a lock with atomic replacement. The edits
//     themselves (addHost, changeHostKeys, removeHost) are pure functions on a
//     RegistryFile, shared by both.
import { readFile, stat } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { BentoError } from '../../common/protocol/errors.js';
import { hostNameProblem, isHostName } from '../../common/protocol/names.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import { writeJsonAtomic } from '../../common/platform/atomic.js';
import { withLock } from './lock.js';

export interface SshHints {
  user?: string;
  port?: number;
  options?: Record<string, string>;
}

export interface HostEntry {
  keys: string[];
  tags: string[];
  ssh: SshHints;
  addedAt: string;
}

export interface RegistryFile {
  version: 1;
  hosts: Record<string, HostEntry>;
}

const EMPTY: RegistryFile = { version: 1, hosts: {} };

/** Parse and normalise an OpenSSH public key line; throws INVALID_KEY. */
export function normaliseKey(line: string): string {
  const trimmed = line.trim();
  const parsed = ssh2.utils.parseKey(trimmed);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.isPrivateKey()) {
    const why = parsed instanceof Error ? parsed.message : 'not a single public key';
    throw new BentoError('INVALID_KEY', `invalid public key: ${why}`);
  }
  // Keep "type base64" only; the comment is not part of the identity.
  return `${parsed.type} ${parsed.getPublicSSH().toString('base64')}`;
}

export function validateHostName(name: string): void {
  if (!isHostName(name)) throw new BentoError('INVALID_HOST_NAME', hostNameProblem(name));
}

export async function readRegistry(file: string): Promise<RegistryFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return structuredClone(EMPTY);
    throw err;
  }
  const raw = JSON.parse(text) as RegistryFile;
  if (raw?.version !== 1 || typeof raw.hosts !== 'object') {
    throw new BentoError('CONFIG_INVALID', `${file}: not a version 1 registry`);
  }
  for (const name of Object.keys(raw.hosts)) {
    if (!isHostName(name)) throw new BentoError('CONFIG_INVALID', `${file}: ${hostNameProblem(name)}`);
  }
  return raw;
}

export interface AddHostInput {
  name: string;
  keys: string[];
  tags: string[];
  ssh?: SshHints;
}

/** Where the CLI reads and edits the registry. */
export interface RegistryStore {
  /** The registry as it is now. */
  read(): Promise<RegistryFile>;
  /**
   * Apply FN to the current registry and store what it returns. FN must be a
   * pure function of its argument: a cluster store runs it again when another
   * hub changed the registry meanwhile. Errors FN throws (HOST_EXISTS,
   * KEY_IN_USE, ...) reject and change nothing.
   */
  update(fn: (reg: RegistryFile) => RegistryFile): Promise<RegistryFile>;
  close(): Promise<void>;
}

/** The embedded hub's registry store: registry.json, edited under registry.lock. */
export function fileRegistryStore(file: string, lockFile: string): RegistryStore {
  return {
    read: () => readRegistry(file),
    update: (fn) => updateRegistry(file, lockFile, fn),
    close: async () => undefined,
  };
}

/** Edit the registry under its lock; `fn` returns the new content. */
export async function updateRegistry(file: string, lockFile: string, fn: (reg: RegistryFile) => RegistryFile): Promise<RegistryFile> {
  return withLock(lockFile, async () => {
    const next = fn(await readRegistry(file));
    await writeJsonAtomic(file, next, { mode: 0o644 });
    return next;
  });
}

export function addHost(reg: RegistryFile, input: AddHostInput): RegistryFile {
  validateHostName(input.name);
  if (reg.hosts[input.name]) throw new BentoError('HOST_EXISTS', `host "${input.name}" is already registered`);
  if (input.keys.length === 0) throw new BentoError('USAGE', 'add-host needs at least one --key or --key-file');
  const keys = input.keys.map(normaliseKey);
  for (const [other, entry] of Object.entries(reg.hosts)) {
    for (const k of keys) {
      if (entry.keys.includes(k)) {
        throw new BentoError('KEY_IN_USE', `key ${fingerprintOfKeyLine(k)} is already registered to "${other}"; one key identifies one host`);
      }
    }
  }
  for (const t of input.tags) {
    if (!isHostName(t)) throw new BentoError('USAGE', `tag "${t}" must be a DNS label like a host name`);
  }
  const entry: HostEntry = { keys, tags: [...new Set(input.tags)], ssh: input.ssh ?? {}, addedAt: new Date().toISOString() };
  return { ...reg, hosts: { ...reg.hosts, [input.name]: entry } };
}

/**
 * Key rotation: add keys to a registered host and/or remove some by
 * fingerprint (or by the key line itself). A key already used by another host
 * is refused (one key identifies one host); a host always keeps at least one.
 */
export function changeHostKeys(reg: RegistryFile, name: string, change: { add: string[]; remove: string[] }): RegistryFile {
  validateHostName(name);
  const entry = reg.hosts[name];
  if (!entry) throw new BentoError('UNKNOWN_HOST', `no host "${name}" in the registry`);
  if (change.add.length === 0 && change.remove.length === 0) throw new BentoError('USAGE', 'nothing to change: give --add KEY, --add-file FILE or --remove FINGERPRINT');
  const added = change.add.map(normaliseKey);
  for (const [other, e] of Object.entries(reg.hosts)) {
    if (other === name) continue;
    for (const k of added) {
      if (e.keys.includes(k)) throw new BentoError('KEY_IN_USE', `key ${fingerprintOfKeyLine(k)} is already registered to "${other}"; one key identifies one host`);
    }
  }
  const gone = new Set<string>();
  for (const r of change.remove) {
    const match = entry.keys.find((k) => fingerprintOfKeyLine(k) === r || k === normaliseKeyOrNull(r));
    if (!match) throw new BentoError('USAGE', `host "${name}" has no key ${r}; \`bento-hub hosts\` lists its fingerprints`);
    gone.add(match);
  }
  const keys = [...new Set([...entry.keys.filter((k) => !gone.has(k)), ...added])];
  if (keys.length === 0) throw new BentoError('USAGE', `host "${name}" must keep at least one key (add the new one first, or use remove-host)`);
  return { ...reg, hosts: { ...reg.hosts, [name]: { ...entry, keys } } };
}

function normaliseKeyOrNull(line: string): string | null {
  try {
    return normaliseKey(line);
  } catch {
    return null;
  }
}

export function removeHost(reg: RegistryFile, name: string): RegistryFile {
  validateHostName(name);
  if (!reg.hosts[name]) throw new BentoError('UNKNOWN_HOST', `no host "${name}" in the registry`);
  const hosts = { ...reg.hosts };
  delete hosts[name];
  return { ...reg, hosts };
}

/** What the running hub reads: authentication, triggers, status. */
export interface RegistryView {
  /** The current registry (file: re-read if the file changed; cluster: the live local view). */
  refresh(): Promise<RegistryFile>;
  /** The last loaded registry, without any I/O. */
  readonly snapshot: RegistryFile;
}

/**
 * The embedded hub's live view of registry.json: re-reads the file when its
 * mtime or size changes (one stat per lookup, cheap even in a reconnect storm).
 */
export class FileRegistryView implements RegistryView {
  private current: RegistryFile = structuredClone(EMPTY);
  private stamp = '';

  constructor(private readonly file: string) {}

  async refresh(): Promise<RegistryFile> {
    let st;
    try {
      st = await stat(this.file);
    } catch {
      this.current = structuredClone(EMPTY);
      this.stamp = 'missing';
      return this.current;
    }
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (stamp !== this.stamp) {
      this.current = await readRegistry(this.file);
      this.stamp = stamp;
    }
    return this.current;
  }

  /** The last loaded registry, without touching the disk. */
  get snapshot(): RegistryFile {
    return this.current;
  }
}
