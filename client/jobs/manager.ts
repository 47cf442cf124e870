// One job at a time on this host. A job.start that arrives while a job runs
// waits as a follow-up run (follow-ups.ts: requests coalesce, a hub's job is
// never dropped). Every
// result goes to the outbox before it is sent, and leaves it on the hub's ack.
// A job.start for a job this host already ran is a resend by a hub that did
// not know (after kill -9 of a hub, the soak saw a job sent twice): it is not
// run again; its result, if still unacknowledged, is sent again instead.
import path from 'node:path';
import type { JobEnd, JobStart, AgentMessage, Outcome, OutputStream } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import { Outbox } from './outbox.js';
import { FollowUps } from './follow-ups.js';
import { runRebuild, type RunResult } from './runner.js';
import { runPrebuilt, type PrebuiltSpec } from './prebuilt.js';
import { rebuildArgv, type RebuildSpec } from './argv.js';
import { checkSystemPin, isPinnedAction, runPinnedRebuild, type MachinePin } from './machine-id.js';
import { currentSystemPath, profileGeneration } from '../system.js';

/** What a rebuild produced, before any guard has judged it. */
export interface RebuildResult { outcome: Outcome; exitCode: number | null; reason?: string }

/**
 * Extension points around a job, so features stay in their own modules:
 * the config pull fetches a changed configuration in prepare(), the rollback
 * guard records the running system in prepare() and judges the switch in
 * settle() (it may turn a success into 'rolled-back').
 */
export interface JobHooks {
  /** Runs before the rebuild; a throw fails the job with its message. */
  prepare?(job: JobStart, line: (data: string) => void): Promise<void>;
  /** Runs after the rebuild; returns the final verdict. */
  settle?(job: JobStart, result: RebuildResult, line: (data: string) => void): Promise<RebuildResult>;
  /** Every output line of the job, the rebuild's (stdout, stderr) and bento's own (note) (the pull keeps the job log with it). */
  output?(job: JobStart, stream: OutputStream, data: string): void;
  /** Extra job.end fields from the final verdict (the pull adds configHash); before the result is stored. */
  finalize?(job: JobStart, end: JobEnd): Promise<Partial<JobEnd>>;
  /** After the final result is stored and sent; runs in the background, a throw is only logged. */
  ended?(job: JobStart, end: JobEnd): Promise<void>;
  /** REQUEST, waiting behind the running job, will not run on its own: the run of INTO serves it (follow-ups.ts). */
  merged?(request: JobStart, into: JobStart): void;
}

export interface JobManagerOptions {
  hooks?: JobHooks[];
  stateDir: string;
  /** This host's name: saved with each result, so the outbox replays only this host's (outbox.ts). */
  host?: string;
  /** How to rebuild; with a machineId, switch/boot/test are checked against this host's id first (machine-id.ts). */
  rebuild: RebuildSpec & Partial<MachinePin>;
  rebuildEnv: Record<string, string>;
  currentSystemLink: string;
  /** How a job with a storePath (trigger --prebuilt) is realised and activated (prebuilt.ts). */
  prebuilt: PrebuiltSpec;
  log: Logger;
  /** Send to the hub if connected; false when not. */
  send(msg: AgentMessage): boolean;
}

/** Job ids this agent remembers having run (besides those in its outbox at start): far more than a resend could lag behind. */
const RECENT_JOBS = 1024;

export class JobManager {
  readonly outbox: Outbox;
  /** Jobs this process ran, oldest first, and those whose results waited in the outbox when it started. */
  private readonly ran = new Set<string>();
  private running: JobStart | null = null;
  private readonly followUps = new FollowUps();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: JobManagerOptions) {
    this.outbox = new Outbox(opts.stateDir, { host: opts.host, log: opts.log });
  }

  /** At agent start: a job left "running" by a dead agent becomes interrupted. */
  async recover(): Promise<void> {
    await this.outbox.init();
    const left = await this.outbox.readRunning();
    for (const end of await this.outbox.list()) this.remember(end.jobId);
    if (!left) return;
    this.remember(left.jobId);
    this.opts.log.warn({ jobId: left.jobId }, 'found a job interrupted by an agent restart');
    await this.outbox.put({
      type: 'job.end', jobId: left.jobId, action: left.action, outcome: 'interrupted', exitCode: null,
      startedAt: left.startedAt, durationMs: Math.max(0, Date.now() - Date.parse(left.startedAt)),
      reason: 'the agent stopped during the job (crash, kill or reboot)',
      system: await currentSystemPath(this.opts.currentSystemLink),
    });
    await this.outbox.clearRunning();
  }

  get runningJobId(): string | null {
    return this.running?.jobId ?? null;
  }

  onJobStart(msg: JobStart): void {
    if (this.running?.jobId === msg.jobId) return; // a resend after reconnect
    if (this.ran.has(msg.jobId)) {
      this.opts.log.warn({ jobId: msg.jobId }, 'the hub sent a job this host already ran; not running it again (its result goes again if not yet acknowledged)');
      void this.replay(msg.jobId);
      return;
    }
    if (this.running) {
      this.queue(msg);
      return;
    }
    void this.run(msg);
  }

  /** MSG waits behind the running job; what it replaces is merged into a run, or ended (follow-ups.ts). */
  private queue(msg: JobStart): void {
    const { merged, superseded } = this.followUps.add(msg);
    for (const { request, into } of merged) {
      this.opts.log.info({ jobId: request.jobId, into: into.jobId }, 'request merged into a waiting run of the same action');
      for (const h of this.opts.hooks ?? []) h.merged?.(request, into);
    }
    if (superseded) void this.supersede(superseded, msg);
  }

  /**
   * JOB, a hub's job waiting behind the running one, was replaced by the hub
   * job BY: it ends here without running, so its hub's record does not read
   * "dispatched" until the agent reconnects. Stored and sent like any result.
   */
  private async supersede(job: JobStart, by: JobStart): Promise<void> {
    const { log, send } = this.opts;
    this.remember(job.jobId);
    const end: JobEnd = {
      type: 'job.end', jobId: job.jobId, action: job.action, outcome: 'interrupted', exitCode: null,
      startedAt: new Date().toISOString(), durationMs: 0,
      reason: `not run: job ${by.jobId} came for this host while it waited behind the running job, and replaced it`,
    };
    log.warn({ jobId: job.jobId, by: by.jobId }, 'a waiting hub job was replaced by another; reporting it as not run');
    await this.outbox.put(end).catch((err: Error) => log.error({ jobId: job.jobId, err: err.message }, 'could not store the job result on disk'));
    send(end);
  }

  private remember(jobId: string): void {
    this.ran.delete(jobId);
    this.ran.add(jobId);
    if (this.ran.size > RECENT_JOBS) this.ran.delete(this.ran.values().next().value!);
  }

  async onAck(jobId: string): Promise<void> {
    await this.outbox.remove(jobId);
  }

  /**
   * Send every unacknowledged result (after each new connection), or only
   * ONLY's (a job.start for a job this host already ran; none left: the hub
   * acknowledged it, so it has it).
   */
  async replay(only?: string): Promise<void> {
    for (const end of await this.outbox.list()) if (only === undefined || end.jobId === only) this.opts.send({ ...end, replayed: true });
  }

  async unreportedIds(): Promise<string[]> {
    return (await this.outbox.list()).map((e) => e.jobId);
  }

  /** Resolves when no job is running (tests, shutdown). */
  idle(): Promise<void> {
    return this.running ? new Promise((r) => this.idleWaiters.push(r)) : Promise.resolve();
  }

  private output(job: JobStart, stream: OutputStream, data: string): void {
    this.opts.send({ type: 'job.output', jobId: job.jobId, stream, data });
    for (const h of this.opts.hooks ?? []) h.output?.(job, stream, data);
  }

  private async run(job: JobStart): Promise<void> {
    const { log, send } = this.opts;
    this.running = job;
    this.remember(job.jobId);
    const startedAt = new Date().toISOString();
    const t0 = Date.now();
    let end: JobEnd;
    try {
      await this.outbox.markRunning({ jobId: job.jobId, action: job.action, startedAt, pid: process.pid });
      send({ type: 'job.started', jobId: job.jobId, action: job.action });
      const argv = rebuildArgv(this.opts.rebuild, job.action);
      log.info({ jobId: job.jobId, ...(job.storePath ? { storePath: job.storePath } : { argv }) }, 'job started');
      // Bento's own lines are notes, not the rebuild's stderr (a hub that predates notes gets them on stderr: forHub).
      const line = (data: string): void => { this.output(job, 'note', `bento: ${data}`); };
      for (const h of this.opts.hooks ?? []) await h.prepare?.(job, line);
      const env = { ...process.env, ...this.opts.rebuildEnv } as Record<string, string>;
      const onLine = (stream: 'stdout' | 'stderr', data: string): void => { this.output(job, stream, data); };
      // The same hooks wrap both: a prebuilt switch is guarded, rebooted and recorded like a rebuild.
      const { machineId, machineIdFile = '/etc/machine-id' } = this.opts.rebuild;
      const pinned = machineId != null && isPinnedAction(job.action);
      const res: RunResult & { reason?: string } = job.storePath
        ? await runPrebuilt({
          spec: this.opts.prebuilt, storePath: job.storePath, action: job.action, env, onLine, say: line,
          ...(pinned ? { verify: (p: string) => checkSystemPin(p, machineIdFile) } : {}),
        })
        : pinned
          ? await runPinnedRebuild({
            spec: this.opts.rebuild, action: job.action, env, onLine, say: line, machineIdFile,
            scratch: path.join(this.opts.stateDir, 'build', job.jobId), systemProfile: this.opts.prebuilt.systemProfile,
          })
          : await runRebuild({ argv, env, onLine });
      let verdict: RebuildResult = {
        outcome: res.exitCode === 0 ? 'success' : 'failure',
        exitCode: res.exitCode,
        reason: res.reason ?? (res.spawnError ? `cannot run ${argv[0]}: ${res.spawnError}`
          : res.exitCode === 0 ? undefined
          : res.signal ? `${argv[0]} was killed by ${res.signal}` : `${argv[0]} exited with status ${res.exitCode}`),
      };
      for (const h of this.opts.hooks ?? []) if (h.settle) verdict = await h.settle(job, verdict, line);
      end = {
        type: 'job.end', jobId: job.jobId, action: job.action, outcome: verdict.outcome, exitCode: verdict.exitCode, startedAt,
        durationMs: Date.now() - t0, ...(verdict.reason ? { reason: verdict.reason } : {}), system: await currentSystemPath(this.opts.currentSystemLink),
        generation: await profileGeneration(this.opts.prebuilt.systemProfile),
      };
      for (const h of this.opts.hooks ?? []) if (h.finalize) end = { ...end, ...(await h.finalize(job, end)) };
    } catch (err) {
      end = {
        type: 'job.end', jobId: job.jobId, action: job.action, outcome: 'failure', exitCode: null, startedAt,
        durationMs: Date.now() - t0, reason: `agent error: ${(err as Error).message}`,
      };
    }
    try {
      await this.outbox.put(end);
      await this.outbox.clearRunning();
    } catch (err) {
      log.error({ jobId: job.jobId, err: (err as Error).message }, 'could not store the job result on disk');
    }
    log.info({ jobId: job.jobId, outcome: end.outcome, exitCode: end.exitCode, durationMs: end.durationMs }, 'job finished');
    send(end);
    for (const h of this.opts.hooks ?? []) {
      h.ended?.(job, end).catch((err: Error) => log.warn({ jobId: job.jobId, err: err.message }, 'job end hook failed'));
    }
    this.running = null;
    const next = this.followUps.take();
    if (next) {
      void this.run(next);
    } else {
      this.idleWaiters.splice(0).forEach((r) => r());
    }
  }
}
