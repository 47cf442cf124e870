// A real fleet for integration tests: `bento-hub` and `bento-client` run as
// separate processes from dist/, exactly as a user runs them, against a fleet
// directory in a temp dir. Keys come from ssh-keygen (OpenSSH format).
import { execFile } from 'node:child_process';
import { writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnDaemon, freePort, waitFor, tmpDir, type Daemon } from './proc.js';
import { adminList } from './admin-query.js';
import { inPool } from '../../common/platform/pool.js';

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const HUB_BIN = path.resolve(here, '../../hub/cli/main.js');
export const CLIENT_BIN = path.resolve(here, '../../client/cli/main.js');

export interface CliResult { code: number; stdout: string; stderr: string }

export async function runCli(bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [bin, ...args], { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 32 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

export interface HostKey { name: string; keyPath: string; publicKey: string }

export async function makeKey(dir: string, name: string): Promise<HostKey> {
  const keyPath = path.join(dir, `${name}_ed25519`);
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', keyPath]);
  return { name, keyPath, publicKey: (await readFile(`${keyPath}.pub`, 'utf8')).trim() };
}

export interface FleetOptions {
  heartbeatMs?: number;
  /** Extra hub.json settings. */
  hubSettings?: Record<string, unknown>;
}

export class TestFleet {
  hub: Daemon | null = null;
  sshPort = 0;
  fingerprint = '';
  readonly agents = new Map<string, Daemon>();
  readonly keys = new Map<string, HostKey>();

  private constructor(readonly dir: string, readonly fleetDir: string, private readonly cleanupDir: () => Promise<void>) {}

  static async create(opts: FleetOptions = {}): Promise<TestFleet> {
    const { dir, cleanup } = await tmpDir('bento-fleet-');
    const f = new TestFleet(dir, path.join(dir, 'fleet'), cleanup);
    f.sshPort = await freePort();
    const init = await f.hubCli(['init', '--listen', `127.0.0.1:${f.sshPort}`]);
    if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
    const hubJson = path.join(f.fleetDir, 'hub.json');
    const settings = { ...JSON.parse(await readFile(hubJson, 'utf8')), heartbeatMs: opts.heartbeatMs ?? 1000, ...(opts.hubSettings ?? {}) };
    await writeFile(hubJson, JSON.stringify(settings));
    f.fingerprint = (await f.hubCli(['fingerprint'])).stdout.trim();
    return f;
  }

  hubCli(args: string[], timeoutMs?: number): Promise<CliResult> {
    return runCli(HUB_BIN, [...args, '--dir', this.fleetDir], { timeoutMs });
  }

  /** Start `bento-hub serve`; with `netns`, inside that network namespace. */
  async startHub(extraArgs: string[] = [], netns?: string): Promise<Daemon> {
    const argv = [HUB_BIN, 'serve', '--dir', this.fleetDir, ...extraArgs];
    this.hub = netns
      ? spawnDaemon('bento-hub', 'ip', ['netns', 'exec', netns, process.execPath, ...argv])
      : spawnDaemon('bento-hub', process.execPath, argv);
    await this.waitServing();
    return this.hub;
  }

  /**
   * Until this.hub serves everything: its "hub serving" log line comes after
   * every listener (agents, WebSocket, dashboard, metrics) is up. The admin
   * socket opens first, so an answer from it alone does not say that.
   */
  async waitServing(): Promise<void> {
    const hub = this.hub;
    if (!hub) throw new Error('no hub started');
    await waitFor('hub serving', () => hub.output().includes('"msg":"hub serving"') || hub.child.exitCode !== null, 15_000, 50);
    if (hub.child.exitCode !== null) throw new Error(`bento-hub exited with ${hub.child.exitCode}:\n${hub.output().slice(-2000)}`);
    await waitFor('hub admin socket', () => adminList(this.fleetDir).then(() => true, () => false), 15_000, 100);
  }

  async stopHub(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.hub) return;
    if (signal === 'SIGKILL') this.hub.child.kill('SIGKILL');
    await this.hub.stop();
    this.hub = null;
  }

  async addHost(name: string, extraArgs: string[] = []): Promise<HostKey> {
    const key = await makeKey(this.dir, name);
    const r = await this.hubCli(['add-host', name, '--key', key.publicKey, ...extraArgs]);
    if (r.code !== 0) throw new Error(`add-host ${name} failed: ${r.stderr}`);
    this.keys.set(name, key);
    return key;
  }

  /** Register every one of NAMES (addHost), a few CLI runs at a time: the registry's lock orders their edits. */
  async addHosts(names: readonly string[]): Promise<void> {
    await inPool(names, 4, async (n) => { await this.addHost(n); });
  }

  /** Write an agent config; `extra` overrides any field. */
  async agentConfig(name: string, extra: Record<string, unknown> = {}): Promise<string> {
    const key = this.keys.get(name);
    const file = path.join(this.dir, `${name}.json`);
    const cfg = {
      name,
      hub: `ssh://127.0.0.1:${this.sshPort}`,
      hubFingerprint: this.fingerprint,
      identityFile: key?.keyPath ?? path.join(this.dir, `${name}_ed25519`),
      stateDir: path.join(this.dir, `state-${name}`),
      backoff: { initialMs: 100, maxMs: 1000 },
      connectTimeoutMs: 5000,
      // Many agents share this machine: no one binds 127.0.0.1:51337 or /run unless a test asks (test/integration/web-*).
      localPage: null,
      ...extra,
    };
    await writeFile(file, JSON.stringify(cfg, null, 2));
    return file;
  }

  startAgent(name: string, configFile: string, env: Record<string, string> = {}, netns?: string): Daemon {
    const argv = [CLIENT_BIN, 'run', '--config', configFile];
    const opts = { env: { ...process.env, ...env } };
    const d = netns
      ? spawnDaemon(`agent-${name}`, 'ip', ['netns', 'exec', netns, process.execPath, ...argv], opts)
      : spawnDaemon(`agent-${name}`, process.execPath, argv, opts);
    this.agents.set(name, d);
    return d;
  }

  /** Who is connected, asked over the admin socket (admin-query.ts: no CLI process per poll). */
  async list(): Promise<Array<{ name: string; [k: string]: unknown }>> {
    return (await adminList(this.fleetDir)) as unknown as Array<{ name: string; [k: string]: unknown }>;
  }

  async waitConnected(names: string[], timeoutMs = 15_000): Promise<void> {
    let up = new Set<string>();
    try {
      await waitFor(`${names.join(', ')} connected`, async () => {
        up = new Set((await this.list()).map((c) => c.name));
        return names.every((n) => up.has(n));
      }, timeoutMs, 100);
    } catch (err) {
      // Say which agents are missing and what they logged: that is the whole diagnosis.
      const missing = names.filter((n) => !up.has(n));
      const logs = missing.map((n) => `--- ${n}:\n${(this.agents.get(n)?.output() ?? '(not started)').slice(-3000)}`).join('\n');
      throw new Error(`${(err as Error).message}\nmissing: ${missing.join(', ')}\n${logs}`);
    }
  }

  /** Stop every agent and the hub, and wait until they have exited; the fleet directory stays. */
  async stop(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
    await this.stopHub();
  }

  async close(): Promise<void> {
    await this.stop();
    await this.cleanupDir();
  }
}
