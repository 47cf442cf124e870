// The pull inside a running agent:
// - hello.configHash = the published hash whose rebuild produced the running system;
// - on connect, on every job (prepare) and on a jittered timer: check the
//   published hash; a changed config is fetched, verified and swapped in
//   (autoApply: rebuilt at once by a local job; else kept ready for a trigger);
// - after every job: its log, gzip-compressed and named like upstream's, goes
//   to the outbox and is uploaded into logs/ (now, or at the next chance);
// - optionally, flake inputs are updated on a schedule (rebuild if the lock changed).
// With the tunnel down, every one of these uses a connection of its own.
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { newJobIdBody } from '../../common/protocol/names.js';
import type { Action, JobEnd, JobStart, OutputStream } from '../../common/protocol/messages.js';
import type { Agent, AgentPlugin } from '../agent.js';
import type { ClientConfig } from '../config.js';
import type { JobHooks } from '../jobs/manager.js';
import type { HubConnection } from '../net/hub-connection.js';
import { currentSystemPath, profileGeneration } from '../system.js';
import { ConfigPuller } from './puller.js';

const APPLYING = new Set(['switch', 'test', 'boot']);
const MAX_LOG_BYTES = 8 * 1024 * 1024;

interface JobLog { lines: string[]; bytes: number; truncated: boolean; hash: string | null; startedAt: number }

export class PullPlugin implements AgentPlugin, JobHooks {
  readonly puller: ConfigPuller;
  private conn: HubConnection | null = null;
  private readonly logs = new Map<string, JobLog>();
  /** Jobs this agent started itself, and why ("pull" or "autoupdate"). */
  private readonly local = new Map<string, 'pull' | 'autoupdate'>();
  private timers: NodeJS.Timeout[] = [];
  private inflight: { jobId: string; hash: string | null; action: string; systemBefore: string | null } | null = null;
  private stopped = false;

  constructor(private readonly agent: Agent, private readonly config: ClientConfig, private readonly log: Logger, privateKey: Buffer) {
    this.puller = new ConfigPuller({ config, log, privateKey, tunnel: () => (this.conn?.isOpen ? this.conn.ssh : null) });
  }

  // ---- agent plugin ---------------------------------------------------------

  async helloFields(): Promise<{ configHash: string | null }> {
    const applied = await this.puller.appliedHash().catch(() => null);
    // A hello DURING a switch (the rollback guard reconnects to prove the hub is
    // reachable): the running system is new and was made by the job in flight.
    const f = this.inflight;
    if (f && f.hash && APPLYING.has(f.action)) {
      const now = await currentSystemPath(this.config.currentSystem);
      if (now !== null && now !== f.systemBefore && !(await this.puller.knowsSystem(now))) return { configHash: f.hash };
    }
    return { configHash: applied };
  }

  onConnected(conn: HubConnection): void {
    this.conn = conn;
    void this.poll('connect');
  }

  onDisconnected(): void {
    this.conn = null;
  }

  // ---- job hooks --------------------------------------------------------------

  async prepare(job: JobStart, line: (data: string) => void): Promise<void> {
    const entry: JobLog = { lines: [], bytes: 0, truncated: false, hash: null, startedAt: Date.now() };
    this.logs.set(job.jobId, entry);
    if (job.storePath) {
      // Prebuilt: the hub built the system; the local configuration is not evaluated, so nothing to fetch for it.
    } else if (!this.local.has(job.jobId)) {
      try {
        const r = await this.puller.check({ reason: 'trigger', apply: true });
        if (r.status === 'updated') line(`configuration ${r.hash} installed (was ${r.previous ?? 'none'})`);
        else if (r.status === 'unchanged') line(`configuration ${r.hash?.slice(0, 12)} is the published one`);
      } catch (err) {
        // A corrupt download must not be built; an unreachable jail only means building what is installed.
        if (err instanceof BentoError && err.code === 'HASH_MISMATCH') throw err;
        line(`could not check the published configuration (${(err as Error).message}); building the installed one`);
      }
    }
    // A prebuilt system applies the config the hub built it from (job.configHash), not whatever is installed here.
    entry.hash = job.storePath ? job.configHash ?? null : (await this.puller.store.state()).base;
    this.inflight = { jobId: job.jobId, hash: entry.hash, action: job.action, systemBefore: await currentSystemPath(this.config.currentSystem) };
  }

  /** job.end carries the applied hash, so the hub's view changes with the job, not only at the next hello. */
  async finalize(job: JobStart, end: JobEnd): Promise<Partial<JobEnd>> {
    if (this.inflight?.jobId === job.jobId) this.inflight = null;
    if (!APPLYING.has(end.action)) return {};
    try {
      const hash = this.logs.get(job.jobId)?.hash ?? null;
      if (end.outcome === 'success' && hash) await this.puller.recordApplied(hash, end.action, end.system ?? null);
      return { configHash: await this.puller.appliedHash() };
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not record the applied configuration');
      return {};
    }
  }

  output(job: JobStart, stream: OutputStream, data: string): void {
    const e = this.logs.get(job.jobId);
    if (!e || e.truncated) return;
    e.bytes += data.length + 1;
    if (e.bytes > MAX_LOG_BYTES) {
      e.truncated = true;
      e.lines.push(`bento: log truncated at ${MAX_LOG_BYTES} bytes`);
      return;
    }
    void stream;
    e.lines.push(data);
  }

  merged(request: JobStart): void {
    this.local.delete(request.jobId);
  }

  async ended(job: JobStart, end: JobEnd): Promise<void> {
    const e = this.logs.get(job.jobId) ?? { lines: [], bytes: 0, truncated: false, hash: (await this.puller.store.state()).base, startedAt: Date.now() };
    this.logs.delete(job.jobId);
    if (this.inflight?.jobId === job.jobId) this.inflight = null;
    const kind = this.local.get(job.jobId);
    this.local.delete(job.jobId);
    if (!this.config.pull.logUpload) return;
    const generation = await profileGeneration(this.config.systemProfile);
    const system = await realpath(this.config.systemProfile).catch(() => end.system ?? null);
    const name = logName(new Date(), system, generation, end, kind);
    const header = [
      `# bento job ${end.jobId} on ${this.config.name}: ${end.action}${kind ? ` (started by the agent: ${kind})` : ''}`,
      `# config ${e.hash ?? 'none'}; outcome ${end.outcome}, exit ${end.exitCode ?? '-'}, ${end.durationMs} ms${end.reason ? `; ${end.reason}` : ''}`,
      `# system ${end.system ?? 'unknown'}; generation ${generation ?? 'unknown'}; started ${end.startedAt}`,
    ];
    await this.puller.queueLog(name, gzipSync(`${[...header, ...e.lines].join('\n')}\n`, { level: 9 }));
    void this.flushLogs();
  }

  // ---- timers ---------------------------------------------------------------

  start(): void {
    const p = this.config.pull;
    if (p.pullIntervalMs > 0) this.every(p.pullIntervalMs, p.pullJitterMs, () => this.poll('timer'));
    if (p.flakeUpdateIntervalMs > 0) this.every(p.flakeUpdateIntervalMs, Math.round(p.flakeUpdateIntervalMs / 5), () => this.flakeUpdate());
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  private every(intervalMs: number, jitterMs: number, fn: () => Promise<void>): void {
    const arm = (): void => {
      if (this.stopped) return;
      const t = setTimeout(() => {
        this.timers = this.timers.filter((x) => x !== t);
        void fn().finally(arm);
      }, intervalMs + Math.round(Math.random() * jitterMs));
      t.unref();
      this.timers.push(t);
    };
    arm();
  }

  /** One check (connect or timer): apply per policy, then send queued logs. */
  private async poll(reason: 'connect' | 'timer'): Promise<void> {
    try {
      const r = await this.puller.check({ reason, apply: this.config.pull.autoApply });
      if (r.status === 'updated' && this.config.pull.autoApply) this.runLocal(this.config.pull.autoApplyAction, 'pull');
    } catch (err) {
      this.log.warn({ reason, err: (err as Error).message }, 'config check failed');
    }
    await this.flushLogs();
  }

  private async flakeUpdate(): Promise<void> {
    if (this.agent.jobs.runningJobId) return; // next time
    try {
      const r = await this.puller.flakeUpdate();
      this.log.info({ result: r }, 'flake input update');
      if (r === 'updated' && this.config.pull.autoApply) this.runLocal(this.config.pull.autoApplyAction, 'autoupdate');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'flake input update failed');
    }
  }

  private runLocal(action: Action, kind: 'pull' | 'autoupdate'): void {
    const jobId = `${kind}-${newJobIdBody()}`;
    this.local.set(jobId, kind);
    this.log.info({ jobId, action, kind }, 'rebuilding on the agent\'s own initiative');
    this.agent.jobs.onJobStart({ type: 'job.start', jobId, action });
  }

  private async flushLogs(): Promise<void> {
    try {
      await this.puller.uploadLogs();
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'log upload failed; will retry');
    }
  }
}

/** upstream: YYYYMMDD-HHMM_<system>_<success|failure|rollback|autoupdate>.log.gz (UTC here, with seconds and generation). */
export function logName(at: Date, system: string | null, generation: number | null, end: Pick<JobEnd, 'outcome'>, kind?: 'pull' | 'autoupdate'): string {
  const d = at.toISOString();
  const ts = `${d.slice(0, 4)}${d.slice(5, 7)}${d.slice(8, 10)}-${d.slice(11, 13)}${d.slice(14, 16)}${d.slice(17, 19)}`;
  const sys = (system ? path.basename(system) : 'unknown').replace(/[^A-Za-z0-9.+=-]/g, '-').slice(0, 120) || 'unknown';
  const outcome = end.outcome === 'success' ? (kind === 'autoupdate' ? 'autoupdate' : 'success')
    : end.outcome === 'rolled-back' ? 'rollback' : 'failure';
  return `${ts}_${sys}${generation !== null ? `_g${generation}` : ''}_${outcome}.log.gz`;
}

/** Wire the pull into an agent before agent.run(); call start() beside run(). */
export async function installPull(agent: Agent, config: ClientConfig, log: Logger): Promise<PullPlugin> {
  const key = await readFile(config.identityFile).catch((err: Error) => {
    throw new BentoError('CONFIG_INVALID', `cannot read identityFile ${config.identityFile}: ${err.message}`);
  });
  const target = config.flake ? config.flake.split('#')[0]! : config.configuration;
  const inside = target !== null && (path.resolve(target) === config.pull.configDir || path.resolve(target).startsWith(`${config.pull.configDir}/`));
  if (!inside) {
    log.info({ configDir: config.pull.configDir, configuration: target }, 'the rebuild does not read configDir: published configurations are fetched there, but rebuilds use the local one (set "configuration" or "flake" inside configDir to use them)');
  }
  const plugin = new PullPlugin(agent, config, log, key);
  await plugin.puller.init();
  agent.use(plugin);
  agent.addJobHooks(plugin);
  return plugin;
}
