// Fleet-directory commands that work without a running hub: init, add-host,
// remove-host, hosts, fingerprint. The registry commands edit registry.json,
// or, when hub.json has a `cluster` section, the cluster's registry in NATS
// (hub/cluster/content-cli.ts): every hub sees the change within a moment.
import { mkdir, readFile, access } from 'node:fs/promises';
import path from 'node:path';
import type { CommandSpec } from '../../common/platform/cli.js';
import { BentoError } from '../../common/protocol/errors.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import { writeJsonAtomic, writeFileAtomic } from '../../common/platform/atomic.js';
import { fleetPaths } from '../fleet/paths.js';
import { DEFAULT_HUB_CONFIG, isHostPort } from '../fleet/hub-config.js';
import { addHost, removeHost } from '../fleet/registry.js';
import { withRegistry } from '../cluster/content-cli.js';
import { fleetDir, keyLines, listenOption, notAFleet, printJson, printTable, str, strs } from './util.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';

export const initCommand: CommandSpec = {
  name: 'init',
  usage: 'init [--dir DIR] [--listen HOST:PORT] [--json]',
  summary: 'Create a fleet directory: hub.json, the hub\'s ed25519 host key, an empty registry.',
  options: {
    listen: { type: 'string', arg: 'HOST:PORT', help: `agent listen address written to hub.json (default ${DEFAULT_HUB_CONFIG.listen})` },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const p = fleetPaths(fleetDir(values));
    // Any one of these means a fleet lives here: never overwrite its identity or hosts.
    for (const f of [p.hubConfig, p.hostKey, p.registry]) {
      if (await exists(f)) throw new BentoError('FLEET_EXISTS', `${f} already exists; this fleet is initialized (refusing to overwrite its key or registry)`);
    }
    const listen = listenOption(values, 'listen') ?? DEFAULT_HUB_CONFIG.listen;
    if (!isHostPort(listen)) throw new BentoError('USAGE', `--listen must be HOST:PORT, got "${listen}"`);
    await mkdir(p.root, { recursive: true, mode: 0o700 });
    await mkdir(p.hostsDir, { recursive: true, mode: 0o755 });
    const keys = generateEd25519('bento-hub');
    await writeFileAtomic(p.hostKey, keys.private, { mode: 0o600 });
    await writeFileAtomic(p.hostKeyPub, `${keys.public}\n`, { mode: 0o644 });
    await writeJsonAtomic(p.registry, { version: 1, hosts: {} }, { mode: 0o644 });
    await writeJsonAtomic(p.hubConfig, { listen }, { mode: 0o644 });
    const fingerprint = fingerprintOfKeyLine(keys.public);
    if (values['json']) printJson({ dir: p.root, fingerprint, listen });
    else process.stdout.write(`initialized fleet in ${p.root}\nhub key fingerprint: ${fingerprint}\n(put it in each agent's "hubFingerprint")\n`);
    return 0;
  },
};

export const addHostCommand: CommandSpec = {
  name: 'add-host',
  usage: 'add-host NAME (--key "ssh-ed25519 ..." | --key-file FILE)... [--tag T]... [--ssh-user U] [--ssh-port P] [--dir DIR]',
  summary: 'Register a host: its name (a DNS label) and the public key(s) it authenticates with.',
  options: {
    key: { type: 'string', multiple: true, arg: 'KEY', help: 'OpenSSH public key line' },
    'key-file': { type: 'string', multiple: true, arg: 'FILE', help: 'file holding an OpenSSH public key (e.g. the host\'s ssh_host_ed25519_key.pub)' },
    tag: { type: 'string', multiple: true, arg: 'TAG', help: 'tag for `trigger --tag`' },
    'ssh-user': { type: 'string', arg: 'USER', help: 'ssh hint: login user for `bento-hub ssh` (default root)' },
    'ssh-port': { type: 'string', arg: 'PORT', help: 'ssh hint: the host\'s sshd port behind the tunnel (default 22)' },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }) {
    const p = fleetPaths(fleetDir(values));
    await requireFleet(p.hubConfig);
    const keys = await keyLines(strs(values, 'key'), strs(values, 'key-file'));
    const port = str(values, 'ssh-port');
    if (port !== undefined && !/^\d{1,5}$/.test(port)) throw new BentoError('USAGE', '--ssh-port must be a port number');
    const name = positionals[0]!;
    const ssh = { ...(str(values, 'ssh-user') ? { user: str(values, 'ssh-user') } : {}), ...(port ? { port: Number(port) } : {}) };
    const tags = strs(values, 'tag');
    const reg = await withRegistry(p.root, (r) => r.update((cur) => addHost(cur, { name, keys, tags, ssh })));
    const entry = reg.hosts[name]!;
    if (values['json']) printJson({ name, ...entry, fingerprints: entry.keys.map(fingerprintOfKeyLine) });
    else process.stdout.write(`added ${name} (${entry.keys.map(fingerprintOfKeyLine).join(', ')})\n`);
    return 0;
  },
};

export const removeHostCommand: CommandSpec = {
  name: 'remove-host',
  usage: 'remove-host NAME [--dir DIR]',
  summary: 'Remove a host from the registry; its key stops working at its next login.',
  options: {},
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }) {
    const p = fleetPaths(fleetDir(values));
    await requireFleet(p.hubConfig);
    await withRegistry(p.root, (r) => r.update((cur) => removeHost(cur, positionals[0]!)));
    process.stdout.write(`removed ${positionals[0]}\n`);
    return 0;
  },
};

export const hostsCommand: CommandSpec = {
  name: 'hosts',
  usage: 'hosts [--json] [--dir DIR]',
  summary: 'List registered hosts with their key fingerprints, tags and ssh hints.',
  options: { json: { type: 'boolean', help: 'print JSON' } },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const p = fleetPaths(fleetDir(values));
    await requireFleet(p.hubConfig);
    const reg = await withRegistry(p.root, (r) => r.read());
    const rows = Object.entries(reg.hosts).sort(([a], [b]) => a.localeCompare(b))
      .map(([name, e]) => ({ name, tags: e.tags, fingerprints: e.keys.map(fingerprintOfKeyLine), ssh: e.ssh, addedAt: e.addedAt }));
    if (values['json']) printJson({ hosts: rows });
    // The SSH column: what `bento-hub ssh NAME` logs in as, and the port on the host its tunnel reaches.
    else printTable(['NAME', 'TAGS', 'KEYS', 'SSH (USER, PORT)'], rows.map((r) => [r.name, r.tags.join(',') || '-', r.fingerprints.join(' '), `${r.ssh.user ?? 'root'}, ${r.ssh.port ?? 22}`]));
    return 0;
  },
};

export const fingerprintCommand: CommandSpec = {
  name: 'fingerprint',
  usage: 'fingerprint [--json] [--dir DIR]',
  summary: 'Print the hub host key fingerprint that agents pin ("hubFingerprint").',
  options: { json: { type: 'boolean', help: 'print JSON' } },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const p = fleetPaths(fleetDir(values));
    await requireFleet(p.hubConfig);
    const fp = fingerprintOfKeyLine(await readFile(p.hostKeyPub, 'utf8'));
    if (values['json']) printJson({ fingerprint: fp });
    else process.stdout.write(`${fp}\n`);
    return 0;
  },
};

async function exists(f: string): Promise<boolean> {
  return access(f).then(() => true, () => false);
}

export async function requireFleet(hubConfig: string): Promise<void> {
  if (!(await exists(hubConfig))) throw notAFleet(path.dirname(hubConfig));
}


