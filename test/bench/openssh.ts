// The OpenSSH side of the comparison (recipe C in
// /work/shared/recipes/real-components.md): Debian's own sshd on its own port
// with its own config, inside `unshare -m` with a private tmpfs on /run (so
// /run/sshd exists without touching the host). It holds M reverse tunnels
// from `ssh -N -R` clients, the way a fleet would hold them with plain
// OpenSSH, and answers fresh `ssh host true` runs, the way push tools
// (colmena, deploy-rs) reach a host for each deployment.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { descendantPids, percentile, treeMem } from './metrics.js';

const execFileP = promisify(execFile);

export interface OpenSshResult {
  tunnels: number;
  tunnelsWanted: number;
  connectSeconds: number;
  handshakesPerSecond: number;
  baselinePssKiB: number;
  pssKiB: number;
  rssKiB: number;
  processes: number;
  pssPerTunnelKiB: number;
  rssPerTunnelKiB: number;
  sshTrueRuns: number;
  sshTrueMs: number[];
  sshTrueP50Ms: number;
  sshTrueP99Ms: number;
}

const live = new Set<ChildProcess>();
let sshdPid = 0;

/** Synchronous last-resort cleanup (process exit): clients, then sshd and whatever it forked. */
export function killOpenSshSync(): void {
  for (const c of live) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  if (sshdPid) {
    const kids = descendantPids(sshdPid);
    for (const p of [sshdPid, ...kids]) killIfSshd(p);
    sshdPid = 0;
  }
}

/** SIGKILL pid only if it still is an sshd process (guards against pid reuse). */
function killIfSshd(pid: number): void {
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sshd')) return;
    process.kill(pid, 'SIGKILL');
  } catch { /* gone */ }
}

function sshdBinary(): string | null {
  for (const p of ['/usr/sbin/sshd', '/usr/bin/sshd', '/sbin/sshd']) if (existsSync(p)) return p;
  return null;
}

export function openSshAvailable(): string | null {
  if (!sshdBinary()) return 'sshd not installed (apt-get install openssh-server)';
  if (process.getuid?.() !== 0) return 'needs root (unshare -m, mount tmpfs on /run)';
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface OpenSshOptions {
  dir: string;
  tunnels: number;
  sshTrueRuns: number;
  /** ssh handshakes in flight while opening the tunnels. */
  inFlight: number;
  deadlineMs: number;
  log(msg: string): void;
}

export async function runOpenSsh(o: OpenSshOptions): Promise<OpenSshResult> {
  const deadline = Date.now() + o.deadlineMs;
  const dir = path.join(o.dir, 'openssh');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const clientKey = path.join(dir, 'client_ed25519');
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-host', '-f', hostKey]);
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-client', '-f', clientKey]);
  const port = await freePort();
  await writeFile(path.join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`), { mode: 0o600 });
  const hostPub = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const knownHosts = path.join(dir, 'known_hosts');
  await writeFile(knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`);
  const cfg = path.join(dir, 'sshd_config');
  await writeFile(cfg, [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    'PidFile none',
    'UsePAM no',
    'StrictModes no',
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AllowTcpForwarding yes',
    'GatewayPorts no',
    // Same keepalive period as the hub's heartbeats.
    'ClientAliveInterval 25',
    `MaxStartups ${Math.max(10, o.inFlight * 2)}:30:${Math.max(20, o.inFlight * 4)}`,
    'LogLevel INFO',
    '',
  ].join('\n'));

  const sshd = spawn('unshare', ['-m', 'sh', '-c', `mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec ${sshdBinary()} -D -e -f '${cfg}'`], { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(sshd);
  sshdPid = sshd.pid!;
  let sshdLog = '';
  let listening = false;
  sshd.stderr!.on('data', (c: Buffer) => {
    if (!listening) {
      sshdLog += c.toString('utf8');
      if (sshdLog.includes('Server listening on')) listening = true;
      if (sshdLog.length > 20_000) sshdLog = sshdLog.slice(-20_000);
    }
  });
  const sshdExited = new Promise<void>((r) => sshd.once('exit', () => r()));
  const clients: ChildProcess[] = [];
  try {
    for (let i = 0; !listening; i++) {
      if (sshd.exitCode !== null || i > 100) throw new Error(`sshd did not start:\n${sshdLog}`);
      await sleep(50);
    }
    // `unshare` and `sh` exec into sshd, so the child's pid is the sshd listener.
    await sleep(200);
    const baseline = treeMem(sshdPid);

    const common = [
      '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`,
      '-o', 'ServerAliveInterval=25', '-i', clientKey, '-p', String(port),
    ];
    // M tunnels, opened with a cap on handshakes in flight.
    let established = 0;
    let failed = 0;
    const t0 = performance.now();
    const openOne = (): Promise<void> => new Promise((resolve) => {
      const c = spawn('ssh', [...common, '-N', '-T', '-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:0:127.0.0.1:22', 'root@127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
      live.add(c);
      clients.push(c);
      let err = '';
      let settled = false;
      const settle = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        if (ok) established++; else failed++;
        resolve();
      };
      c.stderr!.on('data', (d: Buffer) => {
        err += d.toString('utf8');
        if (/Allocated port \d+ for remote forward/.test(err)) settle(true);
        if (err.length > 4000) err = err.slice(-4000);
      });
      c.once('exit', () => { live.delete(c); if (!settled) o.log(`ssh tunnel client exited early: ${err.trim().slice(0, 300)}`); settle(false); });
      setTimeout(() => settle(false), 30_000).unref();
    });
    let next = 0;
    const lanes = Array.from({ length: Math.max(1, o.inFlight) }, async () => {
      while (next < o.tunnels && Date.now() < deadline) {
        next++;
        await openOne();
      }
    });
    await Promise.all(lanes);
    const connectSeconds = (performance.now() - t0) / 1000;
    await sleep(1000); // let the per-connection sshd processes settle
    const held = treeMem(sshdPid);
    const tunnels = established;
    o.log(`openssh: ${tunnels}/${o.tunnels} tunnels (${failed} failed) in ${connectSeconds.toFixed(1)} s; sshd tree ${held.processes} processes, PSS ${(held.pssKiB / 1024).toFixed(1)} MiB`);

    // Fresh `ssh host true` per push, against the same sshd while it holds the tunnels.
    const sshTrueMs: number[] = [];
    for (let i = 0; i < o.sshTrueRuns && Date.now() < deadline; i++) {
      const t = performance.now();
      const code = await new Promise<number | null>((resolve) => {
        const c = spawn('ssh', [...common, 'root@127.0.0.1', 'true'], { stdio: 'ignore' });
        live.add(c);
        const kill = setTimeout(() => c.kill('SIGKILL'), 20_000);
        c.once('exit', (code) => { clearTimeout(kill); live.delete(c); resolve(code); });
      });
      if (code === 0) sshTrueMs.push(performance.now() - t);
      else o.log(`ssh true exited ${code}`);
    }

    const perTunnel = (v: number, b: number): number => (tunnels > 0 ? (v - b) / tunnels : NaN);
    return {
      tunnels,
      tunnelsWanted: o.tunnels,
      connectSeconds,
      handshakesPerSecond: tunnels / connectSeconds,
      baselinePssKiB: baseline.pssKiB,
      pssKiB: held.pssKiB,
      rssKiB: held.rssKiB,
      processes: held.processes,
      pssPerTunnelKiB: perTunnel(held.pssKiB, baseline.pssKiB),
      rssPerTunnelKiB: perTunnel(held.rssKiB, baseline.rssKiB),
      sshTrueRuns: sshTrueMs.length,
      sshTrueMs,
      sshTrueP50Ms: percentile(sshTrueMs, 50),
      sshTrueP99Ms: percentile(sshTrueMs, 99),
    };
  } finally {
    for (const c of clients) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.race([Promise.all(clients.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r))))), sleep(5000)]);
    for (const c of clients) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const kids = descendantPids(sshdPid);
    sshd.kill('SIGTERM');
    await Promise.race([sshdExited, sleep(3000)]);
    for (const p of [sshdPid, ...kids]) killIfSshd(p);
    live.delete(sshd);
    sshdPid = 0;
  }
}
