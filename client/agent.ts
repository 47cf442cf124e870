// The agent's lifecycle: connect (endpoints in order, failing over), serve
// jobs while connected, and reconnect with backoff forever. Each connection
// is fresh (new transport, new SSH handshake); nothing is reused.
import { readFile } from 'node:fs/promises';
import { BentoError, asBentoError } from '../common/protocol/errors.js';
import { PROTOCOL_VERSION, BENTO_VERSION } from '../common/protocol/version.js';
import type { Hello, HubMessage } from '../common/protocol/messages.js';
import type { JobHooks } from './jobs/manager.js';
import type { Logger } from '../common/platform/log.js';
import type { ClientConfig } from './config.js';
import { openTransport } from './net/transport.js';
import { DEFAULT_HEARTBEAT_MS, HubConnection } from './net/hub-connection.js';
import { Backoff } from './net/backoff.js';
import type { Endpoint } from './net/endpoint.js';
import { endpointsToTry } from './net/endpoint-order.js';
import { unlistedHubs } from './net/hub-list.js';
import { JobManager } from './jobs/manager.js';
import { currentSystemPath, profileGeneration } from './system.js';
import { lockStateDir, type StateLock } from './state-lock.js';

/** A connection that lasted this long counts as healthy and resets the backoff. */
const HEALTHY_MS = 30_000;

/**
 * Features that live beside the core agent (config pull, rollback guard, local
 * page) plug in here instead of editing the connection loop.
 */
export interface AgentPlugin {
  /** Extra hello fields, e.g. the applied config hash. */
  helloFields?(): Promise<Partial<Omit<Hello, 'type'>>>;
  /** After each welcome (a fresh connection). */
  onConnected?(conn: HubConnection, endpoint: Endpoint): void | Promise<void>;
  /** After each connection ended. */
  onDisconnected?(): void;
  /** Hub messages the core does not handle. */
  onMessage?(msg: HubMessage): void;
}

export class Agent {
  private conn: HubConnection | null = null;
  private stopped = false;
  private wakeSleep: (() => void) | null = null;
  readonly jobs: JobManager;
  private readonly backoff: Backoff;
  private readonly plugins: AgentPlugin[] = [];
  private readonly jobHooks: JobHooks[] = [];
  private welcomeWaiters: Array<() => void> = [];
  /**
   * The hub's heartbeat period, learnt from its last welcome: the SSH
   * keepalive interval of the next connection (HubConnection). The first
   * connection assumes the default until the hub has said.
   */
  private hubHeartbeatMs = DEFAULT_HEARTBEAT_MS;
  /** This agent's hold on config.stateDir (client/state-lock.ts), from lockStateDir() to the end of run(). */
  private stateLock: StateLock | null = null;
  /** The last hubs a welcome named that the config does not list (said once per change). */
  private unlisted = '';

  constructor(private readonly config: ClientConfig, private readonly log: Logger) {
    this.backoff = new Backoff(config.backoff);
    this.jobs = new JobManager({
      hooks: this.jobHooks,
      stateDir: config.stateDir,
      host: config.name,
      rebuild: config,
      rebuildEnv: config.rebuildEnv,
      currentSystemLink: config.currentSystem,
      prebuilt: { cacheUrl: config.cache ? `http://127.0.0.1:${config.cache.localPort}` : null, systemProfile: config.systemProfile },
      log: log.child({ component: 'jobs' }),
      send: (msg) => this.conn?.isOpen === true && this.conn.send(msg),
    });
  }

  use(plugin: AgentPlugin): void {
    this.plugins.push(plugin);
  }

  addJobHooks(hooks: JobHooks): void {
    this.jobHooks.push(hooks);
  }

  /**
   * Drop the current connection and wait until a NEW one completes its
   * handshake (the rollback guard's proof that the hub is still reachable).
   */
  async freshConnection(timeoutMs: number): Promise<boolean> {
    const got = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => { this.welcomeWaiters = this.welcomeWaiters.filter((w) => w !== done); resolve(false); }, timeoutMs);
      const done = (): void => { clearTimeout(t); resolve(true); };
      this.welcomeWaiters.push(done);
    });
    this.conn?.shutdown(new BentoError('CONNECT_FAILED', 'reconnecting to prove the hub is reachable'));
    this.backoff.reset();
    this.wakeSleep?.();
    return got;
  }

  /**
   * Try to connect again now instead of after the current backoff delay,
   * without dropping a connection or a handshake in progress (the rollback
   * guard nudges this while it waits, so one long backoff cannot eat its window).
   */
  retryNow(): void {
    this.backoff.reset();
    this.wakeSleep?.();
  }

  /**
   * Make config.stateDir this agent's alone, or throw STATE_DIR_LOCKED (another
   * agent runs on it). Call before anything reads or writes the state: the
   * plugins' start-up checks (the rollback guard takes over a running-job
   * marker) would otherwise act on the other agent's files. run() calls it
   * too; calling it again is a no-op.
   */
  async lockStateDir(): Promise<void> {
    this.stateLock ??= await lockStateDir({ stateDir: this.config.stateDir, host: this.config.name });
  }

  /** Runs until stop(). Never throws for network trouble; only for a broken setup. */
  async run(): Promise<void> {
    await this.lockStateDir();
    try {
      await this.serve();
    } finally {
      this.stateLock?.release();
      this.stateLock = null;
    }
  }

  private async serve(): Promise<void> {
    const key = await readFile(this.config.identityFile).catch((err: Error) => {
      throw new BentoError('CONFIG_INVALID', `cannot read identityFile ${this.config.identityFile}: ${err.message}`);
    });
    await this.jobs.recover();
    while (!this.stopped) {
      // Listed order, or each host's own stable order over equivalent hubs (endpoint-order.ts).
      for (const ep of await endpointsToTry(this.config.name, this.config.endpoints, this.config.endpointOrder)) {
        if (this.stopped) break;
        const began = Date.now();
        const connected = await this.session(ep, key);
        if (connected && Date.now() - began >= HEALTHY_MS) this.backoff.reset();
        if (connected) break; // after a session ends, start again from the preferred endpoint
      }
      if (this.stopped) break;
      const delay = this.backoff.next();
      this.log.info({ delayMs: delay, attempt: this.backoff.attempts }, 'reconnecting after backoff');
      await this.sleep(delay);
    }
  }

  /** One connection attempt and, if it works, the whole session. True if the hub welcomed us. */
  private async session(ep: Endpoint, key: Buffer): Promise<boolean> {
    const log = this.log.child({ endpoint: ep.label });
    let conn: HubConnection | null = null;
    try {
      // Everything async happens BEFORE the transport opens: once a proxied
      // socket is connected its bytes may already flow, and the SSH layer must
      // be listening in the same tick or the hub's greeting could be lost.
      const hello = {
        protocol: PROTOCOL_VERSION,
        name: this.config.name,
        agentVersion: BENTO_VERSION,
        system: await currentSystemPath(this.config.currentSystem),
        generation: await profileGeneration(this.config.systemProfile),
        configHash: null,
        // prebuilt: job.start may carry a storePath to switch to (client/jobs/prebuilt.ts).
        // health-check: this host checks itself after a switch and says so in job.end (client/jobs/health-check.ts).
        capabilities: ['jobs', 'reverse-forward', 'prebuilt', ...(this.config.health ? ['health-check'] : [])],
        runningJobId: this.jobs.runningJobId,
        unreported: await this.jobs.unreportedIds(),
        via: ep.label,
        ...(await this.pluginHelloFields()),
      };
      const stream = await openTransport(ep, { timeoutMs: this.config.connectTimeoutMs, log });
      conn = new HubConnection({
        stream,
        name: this.config.name,
        privateKey: key,
        hubFingerprint: this.config.hubFingerprints,
        timeoutMs: this.config.connectTimeoutMs,
        allowForwardPorts: this.config.allowForwardPorts,
        keepaliveMs: this.hubHeartbeatMs,
        log,
        hello,
        onMessage: (msg) => this.onMessage(msg),
      });
      this.conn = conn;
      const welcome = await conn.start();
      log.info({ hubVersion: welcome.hubVersion, heartbeatMs: welcome.heartbeatMs, liveness: conn.liveness }, 'connected to hub');
      this.hubHeartbeatMs = welcome.heartbeatMs;
      const missing = unlistedHubs(this.config.endpoints, welcome.hubs);
      if (missing.join(' ') !== this.unlisted) {
        this.unlisted = missing.join(' ');
        if (missing.length > 0) log.warn({ hubs: missing }, 'the hub names hubs of its cluster that this agent\'s config does not list; add them to "endpoints" so it can reach them when the listed ones are down');
      }
      this.welcomeWaiters.splice(0).forEach((w) => w());
      await this.jobs.replay();
      for (const p of this.plugins) await p.onConnected?.(conn, ep);
      const why = await conn.closed;
      for (const p of this.plugins) p.onDisconnected?.();
      if (!this.stopped) log.warn({ code: why?.code, reason: why?.message }, 'disconnected from hub');
      return true;
    } catch (err) {
      const e = asBentoError(err);
      const level = e.code === 'HOST_KEY_MISMATCH' || e.code === 'AUTH_REJECTED' ? 'error' : 'warn';
      log[level]({ code: e.code, reason: e.message }, 'could not connect to hub');
      conn?.shutdown();
      return false;
    } finally {
      if (this.conn === conn) this.conn = null;
    }
  }

  private onMessage(msg: HubMessage): void {
    if (msg.type === 'job.start') this.jobs.onJobStart(msg);
    else if (msg.type === 'job.ack') void this.jobs.onAck(msg.jobId);
    else for (const p of this.plugins) p.onMessage?.(msg);
  }

  private async pluginHelloFields(): Promise<Partial<Omit<Hello, 'type'>>> {
    let fields: Partial<Omit<Hello, 'type'>> = {};
    for (const p of this.plugins) if (p.helloFields) fields = { ...fields, ...(await p.helloFields()) };
    return fields;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wakeSleep = () => { clearTimeout(t); resolve(); };
    });
  }

  get connected(): boolean {
    return this.conn?.isOpen === true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeSleep?.();
    this.conn?.shutdown();
  }
}
