// ssh to hosts through their tunnels: `proxy` (stdio for ProxyCommand),
// `ssh` (runs OpenSSH with that ProxyCommand) and `ssh-config` (Host blocks).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandSpec } from '../../common/platform/cli.js';
import { BentoError, isErrorCode } from '../../common/protocol/errors.js';
import { encodeLine } from '../../common/protocol/codec.js';
import { isHostName, hostNameProblem } from '../../common/protocol/names.js';
import { fleetPaths } from '../fleet/paths.js';
import { withRegistry } from '../cluster/content-cli.js';
import { connectAdmin } from '../admin/client.js';
import { requireFleet } from './cmd-fleet.js';
import { fleetDir, str, withHub } from './util.js';

const SELF = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

function proxyCommandFor(dir: string, port: number): string {
  const q = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return `${q(process.execPath)} ${q(SELF)} proxy %h ${port} --dir ${q(dir)}`;
}

export const proxyCommand: CommandSpec = {
  name: 'proxy',
  usage: 'proxy HOST [PORT] [--dir DIR]',
  summary: 'Connect stdin/stdout to PORT (default 22) on HOST through its tunnel; for ssh\'s ProxyCommand.',
  details: "Example: ssh -o ProxyCommand='bento-hub proxy %h 22' root@web1",
  options: {},
  positionals: { min: 1, max: 2 },
  async run({ values, positionals }) {
    const host = positionals[0]!;
    if (!isHostName(host)) throw new BentoError('INVALID_HOST_NAME', hostNameProblem(host));
    const port = Number(positionals[1] ?? '22');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BentoError('USAGE', 'PORT must be 1..65535');
    const sock = await withHub(values, connectAdmin);
    sock.write(encodeLine({ op: 'proxy', host, port }));
    // The first line is the hub's answer; after `ready` the socket is raw bytes.
    const first = await new Promise<{ line: string; rest: Buffer }>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const onData = (c: Buffer): void => {
        buf = Buffer.concat([buf, c]);
        const nl = buf.indexOf(0x0a);
        if (nl === -1) return;
        sock.off('data', onData);
        sock.pause();
        resolve({ line: buf.subarray(0, nl).toString('utf8'), rest: buf.subarray(nl + 1) });
      };
      sock.on('data', onData);
      sock.once('error', reject);
      sock.once('end', () => reject(new BentoError('INTERNAL', 'hub closed the proxy request')));
    });
    const ev = JSON.parse(first.line) as { ev: string; code?: string; message?: string };
    if (ev.ev !== 'ready') throw new BentoError(isErrorCode(ev.code) ? ev.code : 'INTERNAL', ev.message ?? 'proxy refused');
    if (first.rest.length) process.stdout.write(first.rest);
    sock.pipe(process.stdout);
    process.stdin.pipe(sock);
    return new Promise<number>((resolve) => {
      sock.on('close', () => resolve(0));
      sock.on('error', () => resolve(1));
      sock.resume();
    });
  },
};

export const sshCommand: CommandSpec = {
  name: 'ssh',
  usage: 'ssh HOST [--dir DIR] [-- SSH-ARGS...]',
  summary: 'Run OpenSSH to HOST through its tunnel, with the host\'s registered user and port hints.',
  options: {},
  positionals: { min: 1, max: 1 },
  async run({ values, positionals, rest }) {
    const dir = fleetDir(values);
    const p = fleetPaths(dir);
    await requireFleet(p.hubConfig);
    const host = positionals[0]!;
    const entry = (await withRegistry(p.root, (r) => r.read())).hosts[host];
    if (!entry) throw new BentoError('UNKNOWN_HOST', `no host "${host}" in the registry`);
    const args = ['-o', `ProxyCommand=${proxyCommandFor(dir, entry.ssh.port ?? 22)}`, ...hintOptions(entry.ssh.options), '-l', entry.ssh.user ?? 'root', host, ...rest];
    const child = spawn('ssh', args, { stdio: 'inherit' });
    return new Promise<number>((resolve) => {
      child.on('exit', (code) => resolve(code ?? 1));
      child.on('error', (err) => { process.stderr.write(`bento-hub ssh: cannot run ssh: ${err.message}\n`); resolve(1); });
    });
  },
};

export const sshConfigCommand: CommandSpec = {
  name: 'ssh-config',
  usage: 'ssh-config [--dir DIR] [--suffix SUFFIX]',
  summary: 'Print ssh_config Host blocks for every host, ready to include from ~/.ssh/config.',
  options: { suffix: { type: 'string', arg: 'SUFFIX', help: 'add an alias NAME+SUFFIX (e.g. .bento) to each block' } },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const dir = fleetDir(values);
    const p = fleetPaths(dir);
    await requireFleet(p.hubConfig);
    const suffix = str(values, 'suffix') ?? '';
    const reg = await withRegistry(p.root, (r) => r.read());
    const blocks = Object.entries(reg.hosts).sort(([a], [b]) => a.localeCompare(b)).map(([name, e]) => [
      `Host ${name}${suffix ? ` ${name}${suffix}` : ''}`,
      `  HostName ${name}`,
      `  User ${e.ssh.user ?? 'root'}`,
      `  ProxyCommand ${proxyCommandFor(dir, e.ssh.port ?? 22)}`,
      ...Object.entries(e.ssh.options ?? {}).map(([k, v]) => `  ${k} ${v}`),
    ].join('\n'));
    process.stdout.write(`# generated by bento-hub ssh-config for ${dir}\n${blocks.join('\n\n')}\n`);
    return 0;
  },
};

function hintOptions(opts: Record<string, string> | undefined): string[] {
  return Object.entries(opts ?? {}).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}
