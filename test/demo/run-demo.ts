// `npm run demo`: a whole fleet on loopback in one command. A hub and three
// agents (web1, web2, db1) run as real processes; their rebuild is a clearly
// labelled SIMULATED one (a shell loop), since this machine is not NixOS.
// It shows `bento-hub list`, then a live `bento-hub trigger --all`, then
// cleans up. Pass --keep to leave the fleet running and try commands yourself.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { generateEd25519 } from '../../common/platform/ed25519.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const HUB = path.resolve(here, '../../hub/cli/main.js');
const CLIENT = path.resolve(here, '../../client/cli/main.js');
const keep = process.argv.includes('--keep');
const children: ChildProcess[] = [];

function hub(args: string[], dir: string, inherit = true): { status: number; stdout: string } {
  const r = spawnSync(process.execPath, [HUB, ...args, '--dir', dir], { stdio: ['ignore', inherit ? 'inherit' : 'pipe', 'inherit'], encoding: 'utf8' });
  return { status: r.status ?? 1, stdout: r.stdout ?? '' };
}

function banner(s: string): void {
  const bold = process.stdout.isTTY && !process.env['NO_COLOR'];
  process.stdout.write(bold ? `\n\x1b[1m== ${s}\x1b[0m\n` : `\n== ${s}\n`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function main(): Promise<number> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'bento-demo-'));
  const dir = path.join(root, 'fleet');
  const port = await freePort();
  banner(`bento-hub init --dir ${dir}`);
  hub(['init', '--listen', `127.0.0.1:${port}`], dir);
  const fingerprint = hub(['fingerprint'], dir, false).stdout.trim();

  const rebuild = path.join(root, 'simulated-nixos-rebuild.sh');
  await writeFile(rebuild, [
    '#!/bin/sh',
    'echo "[SIMULATED REBUILD: demo only, not nixos-rebuild] action=$1 host=$BENTO_DEMO_HOST"',
    'for step in evaluating building "copying paths" activating; do echo "$step..."; sleep 0.4; done',
    'echo "done: /nix/store/00000000000000000000000000000000-nixos-system-$BENTO_DEMO_HOST-demo"',
  ].join('\n'), { mode: 0o755 });

  for (const [name, tag] of [['web1', 'web'], ['web2', 'web'], ['db1', 'db']] as const) {
    const keys = generateEd25519(name);
    const keyFile = path.join(root, `${name}_ed25519`);
    await writeFile(keyFile, keys.private, { mode: 0o600 });
    banner(`bento-hub add-host ${name} --key "ssh-ed25519 ..." --tag ${tag}`);
    hub(['add-host', name, '--key', keys.public, '--tag', tag], dir);
    const cfg = path.join(root, `${name}.json`);
    await writeFile(cfg, JSON.stringify({
      name, hub: `ssh://127.0.0.1:${port}`, hubFingerprint: fingerprint, identityFile: keyFile,
      stateDir: path.join(root, `state-${name}`), rebuildCommand: [rebuild], rebuildEnv: { BENTO_DEMO_HOST: name },
      backoff: { initialMs: 200, maxMs: 2000 },
    }, null, 2));
    children.push(spawn(process.execPath, [CLIENT, 'run', '--config', cfg, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] }));
  }

  banner(`bento-hub serve --dir ${dir} --listen 127.0.0.1:${port} &`);
  const hubProc = spawn(process.execPath, [HUB, 'serve', '--dir', dir, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(hubProc);

  // Wait (bounded) until all three agents are connected.
  for (let i = 0; i < 100; i++) {
    const r = spawnSync(process.execPath, [HUB, 'list', '--json', '--dir', dir], { encoding: 'utf8' });
    if (r.status === 0 && (JSON.parse(r.stdout) as { clients: unknown[] }).clients.length === 3) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  banner('bento-hub list');
  hub(['list'], dir);
  banner('bento-hub trigger --all        (live output, prefixed by host)');
  const t = hub(['trigger', '--all'], dir);
  banner('bento-hub trigger db1 --action test');
  hub(['trigger', 'db1', '--action', 'test'], dir);

  if (keep) {
    process.stdout.write(`\nThe demo fleet keeps running. Try:\n  node ${HUB} list --dir ${dir}\n  node ${HUB} trigger web1 --dir ${dir}\nCtrl-C stops it.\n`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
  // Agents first, so none of them logs the hub going away.
  for (const c of children) if (c !== hubProc) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  hubProc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  await rm(root, { recursive: true, force: true });
  process.stdout.write(`\ndemo finished (trigger exit status ${t.status})\n`);
  return t.status;
}

process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
main().then((code) => process.exit(code), (err) => { process.stderr.write(`demo failed: ${String(err)}\n`); process.exit(1); });
