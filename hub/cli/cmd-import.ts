// `bento-hub import`: migrate an upstream Bento directory (hosts/, fleet.nix,
// config.sh) into this fleet: register every host whose key fleet.nix holds,
// copy hosts/* with symlinks dereferenced, and say what is left to do.
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { CommandSpec } from '../../common/platform/cli.js';
import { BentoError } from '../../common/protocol/errors.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import { hostNameProblem, isHostName } from '../../common/protocol/names.js';
import { fleetPaths } from '../fleet/paths.js';
import { DEFAULT_HUB_CONFIG, loadHubConfig, parseHostPort } from '../fleet/hub-config.js';
import { addHost, normaliseKey, readRegistry, type RegistryFile } from '../fleet/registry.js';
import { withRegistry } from '../cluster/content-cli.js';
import { copyHostDir, readUpstreamFleet } from '../fleet/import-upstream.js';
import { requireFleet } from './cmd-fleet.js';
import { fleetDir, printJson, printTable, str, strs } from './util.js';

interface HostRow {
  name: string;
  /** Directory under hosts/ that defines it, if one was found. */
  config: string | null;
  fingerprints: string[];
  status: 'registered' | 'would-register' | 'already-registered' | 'no-key' | 'error';
  message?: string;
}

interface DirRow {
  dir: string;
  kind: string;
  hosts: string[];
  /** skipped: every host it defines failed to register (a deploy would publish a jail nobody can log into). */
  status: 'copied' | 'would-copy' | 'exists' | 'skipped' | 'error';
  files: number;
  skipped: string[];
  outside: string[];
  message?: string;
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

export const importCommand: CommandSpec = {
  name: 'import',
  usage: 'import --from UPSTREAM_DIR [--fleet-file FILE] [--tag T]... [--dry-run] [--json] [--dir DIR]',
  summary: 'Migrate an upstream Bento directory: register its hosts with their fleet.nix keys and copy hosts/ into this fleet.',
  details: [
    'Reads UPSTREAM_DIR/config.sh, fleet.nix (or utils/fleet.nix) and hosts/*. Hosts already registered with the same key and',
    'directories already present under the fleet\'s hosts/ are left alone, so running it again is safe. Symlinks are dereferenced;',
    'links into /nix/store (result) are skipped. A directory whose hosts all failed to register is not copied (skipped).',
    'The next steps name the agents\' "hub" URL from hub.json "listen". Exits 1 if any host or directory could not be imported.',
    'See docs/migration.md.',
  ].join('\n'),
  options: {
    from: { type: 'string', arg: 'UPSTREAM_DIR', help: 'the upstream Bento directory (the one with hosts/ and config.sh)' },
    'fleet-file': { type: 'string', arg: 'FILE', help: 'upstream fleet.nix, if not UPSTREAM_DIR/fleet.nix or utils/fleet.nix' },
    tag: { type: 'string', multiple: true, arg: 'TAG', help: 'tag every imported host' },
    'dry-run': { type: 'boolean', help: 'show what would be registered and copied; change nothing' },
    json: { type: 'boolean', help: 'print the report as JSON' },
  },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const from = str(values, 'from');
    if (!from) throw new BentoError('USAGE', '--from UPSTREAM_DIR is required');
    const dry = values['dry-run'] === true;
    const p = fleetPaths(fleetDir(values));
    if (!dry) await requireFleet(p.hubConfig);
    const up = await readUpstreamFleet(from, str(values, 'fleet-file'));
    const tags = strs(values, 'tag');

    const keysOf = new Map(up.users.map((u) => [u.name, u.keys]));
    const names = [...new Set([...up.users.map((u) => u.name), ...up.hostDirs.flatMap((d) => d.hosts)])].sort();
    const hosts: HostRow[] = names.map((name) => ({
      name, config: up.hostDirs.find((d) => d.hosts.includes(name))?.dir ?? null, fingerprints: [], status: 'no-key',
    }));
    const plan = (reg: RegistryFile): RegistryFile => {
      let next = reg;
      for (const h of hosts) {
        const keys = keysOf.get(h.name) ?? [];
        if (!isHostName(h.name)) {
          Object.assign(h, { status: 'error', message: `${hostNameProblem(h.name)}; rename it upstream (directory or flake attribute) first` });
          continue;
        }
        if (keys.length === 0) continue;
        try {
          h.fingerprints = keys.map(fingerprintOfKeyLine);
          const known = next.hosts[h.name];
          if (known) {
            const same = keys.map(normaliseKey).every((k) => known.keys.includes(k));
            Object.assign(h, same ? { status: 'already-registered' } : { status: 'error', message: 'already registered with other key(s); check `bento-hub hosts`, then remove-host and import again' });
            continue;
          }
          next = addHost(next, { name: h.name, keys, tags });
          h.status = dry ? 'would-register' : 'registered';
        } catch (err) {
          Object.assign(h, { status: 'error', message: (err as Error).message });
        }
      }
      return next;
    };
    // In a cluster the hosts go into the cluster's registry (hub.json's cluster section), like add-host's.
    // A dry run needs no fleet at all: without hub.json it plans against an empty registry.
    if (dry && !(await exists(p.hubConfig))) plan(await readRegistry(p.registry));
    else await withRegistry(p.root, (r) => (dry ? r.read().then(plan) : r.update(plan)));

    const dirs: DirRow[] = [];
    for (const d of up.hostDirs) {
      const row: DirRow = { dir: d.dir, kind: d.kind, hosts: d.hosts, status: dry ? 'would-copy' : 'copied', files: 0, skipped: [], outside: [] };
      dirs.push(row);
      const dest = path.join(p.hostsDir, d.dir);
      const failed = d.hosts.filter((h) => hosts.find((x) => x.name === h)?.status === 'error');
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(d.dir)) {
        Object.assign(row, { status: 'error', message: 'directory name must be letters, digits, ".", "_" or "-"; rename it upstream' });
      } else if (d.kind !== 'flake' && !isHostName(d.dir)) {
        // Its name is its host's name: a name that cannot be registered would never be deployed.
        Object.assign(row, { status: 'error', message: `${hostNameProblem(d.dir)}; rename it upstream` });
      } else if (await exists(dest)) {
        row.status = 'exists';
      } else if (failed.length > 0 && failed.length === d.hosts.length) {
        // Copied, a later deploy would publish it into a jail nobody can log into.
        Object.assign(row, { status: 'skipped', message: `not copied: ${failed.join(', ')} could not be registered (see above); fix that and import again` });
      } else {
        try {
          if (!dry) await mkdir(p.hostsDir, { recursive: true, mode: 0o755 });
          Object.assign(row, await copyHostDir(path.join(up.root, 'hosts', d.dir), dest, up.root, !dry));
        } catch (err) {
          Object.assign(row, { status: 'error', message: (err as Error).message });
        }
      }
    }

    const agentUrl = hubUrl(await hubListen(p.hubConfig), up.settings.remoteHost);
    const report = { from: up.root, dir: p.root, dryRun: dry, settings: up.settings, fleetFile: up.fleetFile, hosts, dirs, warnings: up.warnings, nextSteps: nextSteps(hosts, agentUrl, str(values, 'dir')) };
    if (values['json']) printJson(report);
    else printReport(report);
    return hosts.some((h) => h.status === 'error') || dirs.some((d) => d.status === 'error' || d.status === 'skipped') ? 1 : 0;
  },
};

/** The hub's agent listen address from this fleet's hub.json (init's default before there is one: a dry run may come first). */
async function hubListen(hubConfig: string): Promise<string> {
  return (await exists(hubConfig)) ? (await loadHubConfig(hubConfig)).listen : DEFAULT_HUB_CONFIG.listen;
}

/**
 * The "hub" URL agents should use: the hub's real port, and its listen
 * address when that is one agents can dial; a wildcard or loopback listen
 * says nothing about the name hosts reach it by, so upstream's REMOTE_IP
 * (the old sftp server, usually the same machine) or a placeholder.
 */
export function hubUrl(listen: string, remoteHost: string | null): string {
  const hp = parseHostPort(listen);
  const port = hp?.port ?? 2222;
  const specific = hp && !['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost'].includes(hp.host) ? hp.host : null;
  const host = specific ?? remoteHost ?? 'HUB';
  return `ssh://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function nextSteps(hosts: HostRow[], agentUrl: string, dirFlag: string | undefined): string[] {
  const dir = dirFlag ? ` --dir ${dirFlag}` : '';
  const steps: string[] = [];
  for (const h of hosts.filter((x) => x.status === 'no-key')) {
    steps.push(`${h.name}: no key in fleet.nix. Run \`cat /etc/ssh/ssh_host_ed25519_key.pub\` on ${h.name}, save it as ${h.name}.pub here, then \`bento-hub add-host ${h.name} --key-file ${h.name}.pub${dir}\``);
  }
  if (hosts.some((h) => h.status === 'registered' || h.status === 'would-register' || h.status === 'already-registered')) {
    steps.push('The fleet.nix keys are the ones upstream\'s sftp user accepted, usually root\'s own key (/root/.ssh/id_ed25519), not the ssh host key: '
      + 'on those hosts set services.bento.client.identityFile = "/root/.ssh/id_ed25519"; (or re-register them with their host key).');
  }
  steps.push(`On every host: services.bento.client = { enable = true; hub = "${agentUrl}"; hubFingerprint = "<bento-hub fingerprint${dir}>"; };`);
  steps.push('Keep upstream\'s sftp chroot serving until every host runs the agent; then `bento-hub deploy` publishes from the fleet\'s hosts/.');
  return steps;
}

function printReport(r: { from: string; dir: string; dryRun: boolean; hosts: HostRow[]; dirs: DirRow[]; warnings: string[]; nextSteps: string[] }): void {
  process.stdout.write(`${r.dryRun ? 'dry run: nothing changed. ' : ''}import ${r.from} -> ${r.dir}\n\nhosts:\n`);
  printTable(['NAME', 'CONFIG', 'KEYS', 'STATUS'], r.hosts.map((h) => [h.name, h.config ? `hosts/${h.config}` : '-', h.fingerprints.join(' ') || '-', h.message ? `${h.status}: ${h.message}` : h.status]));
  process.stdout.write('\nhost directories:\n');
  printTable(['DIR', 'KIND', 'FILES', 'STATUS'], r.dirs.map((d) => [d.dir, d.kind, String(d.files), d.message ? `${d.status}: ${d.message}` : d.status]));
  const notes = [
    ...r.warnings,
    ...r.dirs.flatMap((d) => d.skipped.map((s) => `hosts/${d.dir}/${s}: skipped`)),
    ...r.dirs.flatMap((d) => d.outside.map((s) => `hosts/${d.dir}/${s}: followed a link out of the upstream directory; check it holds no secret you did not mean to publish`)),
  ];
  if (notes.length) process.stdout.write(`\nnotes:\n${notes.map((n) => `  - ${n}`).join('\n')}\n`);
  process.stdout.write(`\nnext steps:\n${r.nextSteps.map((s) => `  - ${s}`).join('\n')}\n`);
}
