// The hub under test: a fleet directory made with the real CLI (`init`), a
// registry.json of N generated hosts written directly (N add-host calls would
// take minutes), and `bento-hub serve` as a child process so its CPU and
// memory can be read from /proc/PID. Plus a minimal admin-socket client: one
// JSON request line, JSON event lines back, timed with hrtime.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
// The CLI's own admin client (this file's adminRequest below is a raw one, for timing single events).
import { adminRequest as openAdmin } from '../../hub/admin/client.js';
import type { ClientInfo } from '../../common/protocol/admin.js';
import type { AgentSpec } from './ipc.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const HUB_BIN = path.resolve(here, '../../hub/cli/main.js');
const FLOOR_BIN = path.join(here, 'floor-server.js');

export interface Fleet {
  dir: string;
  port: number;
  socket: string;
  agents: AgentSpec[];
  /** "SHA256:..." of the hub key, as agents pin it. */
  fingerprint: string;
}

/**
 * Publish a configuration for one host with the real `bento-hub deploy`, so the
 * no-change poll reads a real version.json. hub.json's publish.buildCommand is
 * `true` here (no Nix build): the poll never looks at the build.
 */
export async function deployOne(fleet: Fleet, host: string): Promise<string> {
  const dir = path.join(fleet.dir, 'hosts', host);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'configuration.nix'), `{ ... }: {\n  networking.hostName = "${host}";\n}\n`);
  const { stdout } = await execFileP(process.execPath, [HUB_BIN, 'deploy', host, '--dir', fleet.dir, '--json'], { timeout: 120_000 });
  const row = (JSON.parse(stdout) as { hosts: Array<{ host: string; result: string; hash: string | null; message: string }> }).hosts.find((r) => r.host === host);
  if (!row || row.result !== 'updated' || !row.hash) throw new Error(`deploy ${host}: ${row ? `${row.result} ${row.message}` : 'no row'}`);
  return row.hash;
}

export function hostName(i: number): string {
  return `h${String(i).padStart(5, '0')}`;
}

/** init through the CLI, then N ed25519 hosts straight into registry.json. */

export async function makeFleet(dir: string, port: number, n: number, heartbeatMs: number): Promise<Fleet> {
  await execFileP(process.execPath, [HUB_BIN, 'init', '--dir', dir, '--listen', `127.0.0.1:${port}`, '--json'], { timeout: 60_000 });
  const hubJson = path.join(dir, 'hub.json');
  const settings = JSON.parse(await readFile(hubJson, 'utf8')) as Record<string, unknown>;
  await writeFile(hubJson, JSON.stringify({ ...settings, heartbeatMs, publish: { buildCommand: ['true'] } }, null, 2));
  const agents: AgentSpec[] = [];
  const hosts: Record<string, unknown> = {};
  const addedAt = new Date().toISOString();
  for (let i = 0; i < n; i++) {
    const name = hostName(i);
    const k = generateEd25519();
    agents.push({ name, privateKey: k.private });
    // registry keys are "type base64" without comment (what add-host stores).
    hosts[name] = { keys: [k.public.split(/\s+/).slice(0, 2).join(' ')], tags: i % 2 === 0 ? ['even'] : [], ssh: {}, addedAt };
  }
  await writeFile(path.join(dir, 'registry.json'), `${JSON.stringify({ version: 1, hosts })}\n`, { mode: 0o644 });
  const fingerprint = fingerprintOfKeyLine(await readFile(path.join(dir, 'hub_ed25519_key.pub'), 'utf8'));
  return { dir, port, socket: path.join(dir, 'hub.sock'), agents, fingerprint };
}

/**
 * Register one more host ("probe", or `name`) that no load-generator worker
 * runs: the attack phase connects it by hand to time a legitimate agent under
 * attack; the compromised-host phase attacks with its key.
 * Added to registry.json late (atomic replace; the hub re-reads it when it
 * changes) so that the fan-out's "trigger all" does not meet an offline host.
 */
export async function addProbeHost(fleet: Fleet, name = 'probe'): Promise<AgentSpec> {
  const file = path.join(fleet.dir, 'registry.json');
  const reg = JSON.parse(await readFile(file, 'utf8')) as { version: number; hosts: Record<string, unknown> };
  const k = generateEd25519();
  reg.hosts[name] = { keys: [k.public.split(/\s+/).slice(0, 2).join(' ')], tags: [], ssh: {}, addedAt: new Date().toISOString() };
  await writeFile(`${file}.tmp`, `${JSON.stringify(reg)}\n`, { mode: 0o644 });
  await rename(`${file}.tmp`, file);
  return { name, privateKey: k.private };
}

export interface HubProcess {
  child: ChildProcess;
  pid: number;
  startedAt: number;
  output(): string;
  exited: Promise<void>;
}

const liveHubs = new Set<ChildProcess>();
export function killAllHubs(): void {
  for (const c of liveHubs) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
}

export interface HubStartOptions {
  /** The hub's --log-level. Default warn: the bench measures the hub, not its logging (the soak reads info). */
  logLevel?: string;
  /** Every chunk the hub prints (stdout and stderr) as it comes, e.g. to keep it in a file; the last 100 kB stay in output() too. */
  onOutput?: (chunk: Buffer) => void;
}

/** `bento-hub serve` with a raised descriptor limit; `exec` keeps the node process at the shell's PID. */
export function startHubProcess(fleet: Fleet, nofile: number, extraNodeArgs: string[] = [], o: HubStartOptions = {}): HubProcess {
  return startNode([...extraNodeArgs, HUB_BIN, 'serve', '--dir', fleet.dir, '--listen', `127.0.0.1:${fleet.port}`, '--log-level', o.logLevel ?? 'warn'], nofile, o.onOutput);
}

/** The floor server (floor-server.ts) on the hub's port and admin socket path, run the same way as the hub. */
export function startFloorProcess(fleet: Fleet, nofile: number, heartbeatMs: number, extraNodeArgs: string[] = []): HubProcess {
  return startNode([...extraNodeArgs, FLOOR_BIN, '--dir', fleet.dir, '--port', String(fleet.port), '--heartbeat-ms', String(heartbeatMs)], nofile);
}

function startNode(argList: string[], nofile: number, onOutput?: (chunk: Buffer) => void): HubProcess {
  const args = argList.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('sh', ['-c', `ulimit -n ${nofile} && exec '${process.execPath}' ${args}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveHubs.add(child);
  let buf = '';
  const keep = (c: Buffer): void => {
    onOutput?.(c);
    buf += c.toString('utf8');
    if (buf.length > 100_000) buf = buf.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => { liveHubs.delete(child); resolve(); }));
  return { child, pid: child.pid!, startedAt: performance.now(), output: () => buf, exited };
}

export async function killHub(h: HubProcess, signal: NodeJS.Signals, timeoutMs = 15_000): Promise<void> {
  if (h.child.exitCode !== null || h.child.signalCode !== null) return;
  h.child.kill(signal);
  const t = setTimeout(() => h.child.kill('SIGKILL'), timeoutMs);
  await h.exited;
  clearTimeout(t);
}

export interface AdminEvent { ev: string; [k: string]: unknown }

/**
 * One admin request. onEvent sees each event with the ms from just before the
 * connect to the arrival of the event's last byte (measured before parsing);
 * returning true ends the request early.
 */
export function adminRequest(
  socket: string,
  req: object,
  onEvent: (e: AdminEvent, ms: number) => boolean | void,
  timeoutMs: number,
): Promise<{ ms: number; closedBy: 'hub' | 'client' | 'timeout' }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = net.connect(socket);
    // Unfinished line: chunks kept as they came, joined once the newline arrives
    // (a 4 MiB `list` answer must not cost O(n^2) string work here).
    let parts: Buffer[] = [];
    let done = false;
    const finish = (closedBy: 'hub' | 'client' | 'timeout'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ms: performance.now() - t0, closedBy });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    sock.once('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (c: Buffer) => {
      const at = performance.now() - t0;
      let start = 0;
      for (let nl = c.indexOf(0x0a); !done && nl !== -1; nl = c.indexOf(0x0a, start)) {
        parts.push(c.subarray(start, nl));
        start = nl + 1;
        const line = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        parts = [];
        if (line.length === 0) continue;
        let e: AdminEvent;
        try {
          e = JSON.parse(line.toString('utf8')) as AdminEvent;
        } catch {
          e = { ev: 'error', message: `admin socket sent a line that is not JSON (${line.length} bytes)` };
        }
        if (onEvent(e, at) === true) finish('client');
      }
      if (!done && start < c.length) parts.push(c.subarray(start));
    });
    sock.on('end', () => finish('hub'));
    sock.on('close', () => finish('hub'));
    sock.on('error', (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * `list` as the CLI asks for it (gzip, through the CLI's own admin client): how many clients the hub
 * reports, and how long the answer took, connect to parsed (what `bento-hub list` waits for, less its
 * start-up). Before the answer was compressed, the time ended at its last byte, before parsing.
 */
export async function listCount(socket: string, timeoutMs = 10_000): Promise<{ count: number; ms: number }> {
  const t0 = performance.now();
  const clients = await listed(socket, timeoutMs);
  return { count: clients.length, ms: performance.now() - t0 };
}

/** `list` as the CLI asks for it, within TIMEOUT_MS (then its connection is closed). */
export async function listed(socket: string, timeoutMs: number): Promise<ClientInfo[]> {
  const conn = await openAdmin(socket, { op: 'list', gzip: true });
  const timer = setTimeout(() => conn.socket.destroy(new Error(`list: no answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    for await (const e of conn.events) if (e.ev === 'list') return e.clients;
    throw new Error('list: the hub closed the connection without an answer');
  } finally {
    clearTimeout(timer);
    conn.socket.destroy();
  }
}

export async function ping(socket: string): Promise<boolean> {
  try {
    let ok = false;
    await adminRequest(socket, { op: 'ping' }, (e) => { ok = e.ev === 'pong'; return ok; }, 2000);
    return ok;
  } catch {
    return false;
  }
}
