// `npm run demo`: a whole fleet on loopback in one command. A hub and three
// agents (web1, web2, db1) run as real processes; their rebuild is a clearly
// labelled SIMULATED one (a shell loop), since this machine is not NixOS.
// It shows `bento-hub list`, a live `bento-hub trigger --all`, `status`, and
// the dashboard's address, then cleans up. Pass --keep to leave the fleet
// (and the dashboard) running and try commands yourself; Ctrl-C stops it.
//
// Everything lives in one temp directory, removed at the end: the fleet, the
// agents' state, keys, local page sockets and the daemons' logs (JSON lines,
// kept out of the banners). Every agent gets its own local page port and
// socket, and "system" paths inside that directory, so nothing on this
// machine is read as a NixOS system or written to, even on NixOS.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, rm, mkdir, open, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { generateEd25519 } from '../../common/platform/ed25519.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const HUB = path.resolve(here, '../../hub/cli/main.js');
const CLIENT = path.resolve(here, '../../client/cli/main.js');
const keep = process.argv.includes('--keep');
const HOSTS = [['web1', 'web'], ['web2', 'web'], ['db1', 'db']] as const;

interface Daemon { name: string; child: ChildProcess; log: string }
const daemons: Daemon[] = [];

// Ctrl-C (or SIGTERM) at any point: stop the fleet and remove the temp directory, never leave them behind.
let interrupted = false;
let onInterrupt: () => void = () => undefined;
const interruptedP = new Promise<void>((resolve) => { onInterrupt = resolve; });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { interrupted = true; onInterrupt(); });
class Interrupted extends Error {}

function hub(args: string[], dir: string, inherit = true): { status: number; stdout: string } {
  if (interrupted) throw new Interrupted();
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

/** A daemon whose output (JSON log lines) goes to LOGDIR/NAME.log, not between the banners. */
async function startDaemon(name: string, args: string[], logDir: string): Promise<Daemon> {
  const log = path.join(logDir, `${name}.log`);
  const fd = await open(log, 'a');
  const child = spawn(process.execPath, args, { stdio: ['ignore', fd.fd, fd.fd] });
  await fd.close();
  const d = { name, child, log };
  daemons.push(d);
  return d;
}

/** Poll (bounded) until `ok`; on timeout, show the daemons' last log lines: that is the diagnosis. */
async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    if (interrupted) throw new Interrupted();
    if (ok()) return;
    const dead = daemons.find((d) => d.child.exitCode !== null);
    if (dead) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tails = await Promise.all(daemons.map(async (d) => `--- ${d.name} (${d.log}):\n${(await readFile(d.log, 'utf8').catch(() => '')).split('\n').slice(-8).join('\n')}`));
  throw new Error(`timed out waiting for ${what}\n${tails.join('\n')}`);
}

async function main(): Promise<number> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'bento-demo-'));
  try {
    return await demo(root);
  } catch (err) {
    if (!(err instanceof Interrupted)) throw err;
    process.stdout.write('\ninterrupted: stopping the demo fleet\n');
    return 130;
  } finally {
    await stopAll();
    await rm(root, { recursive: true, force: true });
  }
}

async function demo(root: string): Promise<number> {
  const dir = path.join(root, 'fleet');
  const logs = path.join(root, 'logs');
  await mkdir(logs);
  const port = await freePort();
  const dashboardPort = await freePort();
  banner(`bento-hub init --dir ${dir} --listen 127.0.0.1:${port}`);
  hub(['init', '--listen', `127.0.0.1:${port}`], dir);
  const fingerprint = hub(['fingerprint'], dir, false).stdout.trim();
  // The dashboard, on loopback, with its token (created at the hub's first start).
  const hubJson = path.join(dir, 'hub.json');
  await writeFile(hubJson, JSON.stringify({ ...JSON.parse(await readFile(hubJson, 'utf8')), dashboard: { listen: `127.0.0.1:${dashboardPort}` } }, null, 2));

  const rebuild = path.join(root, 'simulated-nixos-rebuild.sh');
  await writeFile(rebuild, [
    '#!/bin/sh',
    'echo "[SIMULATED REBUILD: demo only, not nixos-rebuild] action=$1 host=$BENTO_DEMO_HOST"',
    'for step in evaluating building "copying paths" activating; do echo "$step..."; sleep 0.4; done',
    'echo "done: /nix/store/00000000000000000000000000000000-nixos-system-$BENTO_DEMO_HOST-demo"',
  ].join('\n'), { mode: 0o755 });

  const configs: string[] = [];
  for (const [name, tag] of HOSTS) {
    const keys = generateEd25519(name);
    const home = path.join(root, name);
    await mkdir(home);
    const keyFile = path.join(home, 'id_ed25519');
    await writeFile(keyFile, keys.private, { mode: 0o600 });
    banner(`bento-hub add-host ${name} --key "ssh-ed25519 ..." --tag ${tag}`);
    hub(['add-host', name, '--key', keys.public, '--tag', tag], dir);
    const cfg = path.join(root, `${name}.json`);
    await writeFile(cfg, JSON.stringify({
      name, hub: `ssh://127.0.0.1:${port}`, hubFingerprint: fingerprint, identityFile: keyFile,
      stateDir: path.join(home, 'state'), rebuildCommand: [rebuild], rebuildEnv: { BENTO_DEMO_HOST: name },
      // Not this machine's system, whatever it is (the rollback guard and reboot check read these).
      currentSystem: path.join(home, 'current-system'), systemProfile: path.join(home, 'profiles', 'system'),
      secretsDir: path.join(home, 'secrets'),
      // Its own page port and socket: three agents on one machine must not fight over 51337 and /run.
      localPage: { listen: `127.0.0.1:${await freePort()}`, socket: path.join(home, 'local.sock') },
      backoff: { initialMs: 200, maxMs: 2000 },
    }, null, 2));
    configs.push(cfg);
  }

  banner(`bento-hub serve --dir ${dir} &        (its log: ${path.join(logs, 'hub.log')})`);
  await startDaemon('hub', [HUB, 'serve', '--dir', dir], logs);
  await until('the hub', () => spawnSync(process.execPath, [HUB, 'list', '--json', '--dir', dir]).status === 0, 15_000);
  banner(`bento-client run --config ${path.join(root, 'NAME.json')} &    (for web1, web2, db1; logs in ${logs})`);
  for (const [i, [name]] of HOSTS.entries()) await startDaemon(name, [CLIENT, 'run', '--config', configs[i]!], logs);
  await until('all three agents to connect', () => {
    const r = spawnSync(process.execPath, [HUB, 'list', '--json', '--dir', dir], { encoding: 'utf8' });
    return r.status === 0 && (JSON.parse(r.stdout) as { clients: unknown[] }).clients.length === HOSTS.length;
  }, 20_000);

  banner('bento-hub list');
  hub(['list'], dir);
  banner('bento-hub trigger --all        (live output, prefixed by host)');
  const t = hub(['trigger', '--all'], dir);
  banner('bento-hub trigger db1 --action test');
  hub(['trigger', 'db1', '--action', 'test'], dir);
  banner('bento-hub status');
  hub(['status'], dir);

  const token = (await readFile(path.join(dir, 'dashboard.token'), 'utf8')).trim();
  const url = `http://bento:${token}@127.0.0.1:${dashboardPort}/`;
  banner('the dashboard');
  process.stdout.write(`${url}\n(any user name; the token is the password: ${path.join(dir, 'dashboard.token')})\n`);
  if (keep) {
    process.stdout.write([
      '', 'The demo fleet keeps running (hub, three agents, the dashboard above). Try:',
      `  node ${HUB} status --dir ${dir}`,
      `  node ${HUB} trigger web1 --dir ${dir}`,
      `  node ${HUB} trigger --tag web --action test --dir ${dir}`,
      `Logs: ${logs}. Ctrl-C stops it and removes ${root}.`, '',
    ].join('\n'));
    await interruptedP;
  } else {
    process.stdout.write('(`npm run demo -- --keep` keeps the fleet and the dashboard running)\n');
  }
  process.stdout.write(`\ndemo finished (trigger exit status ${t.status})\n`);
  return t.status;
}

/** Agents first, so none of them logs the hub going away; each bounded, then killed. */
async function stopAll(): Promise<void> {
  const stop = async (d: Daemon): Promise<void> => {
    if (d.child.exitCode !== null || d.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => d.child.once('exit', () => r()));
    d.child.kill('SIGTERM');
    const timer = setTimeout(() => d.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  await Promise.all(daemons.filter((d) => d.name !== 'hub').map(stop));
  await Promise.all(daemons.filter((d) => d.name === 'hub').map(stop));
}

process.on('exit', () => { for (const d of daemons) d.child.kill('SIGKILL'); });
main().then((code) => process.exit(code), (err) => { process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`); process.exit(1); });
