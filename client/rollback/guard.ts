// Magic rollback. Before a switch (or test) the agent records on disk the
// exact store path that is running and, once the switch is done, a deadline.
// It then drops its connection and must complete a FRESH connection and
// handshake to the hub before the deadline (connection-proof.ts); otherwise
// it re-activates exactly the recorded path (not "the previous generation",
// which may not be what was running). A switch that exits non-zero after
// changing something is rolled back at once. The record survives the agent
// being restarted by the switch itself, or a reboot: at start the agent
// finishes the decision (docs/rollback.md).
import { realpath } from 'node:fs/promises';
import type { JobEnd, JobStart, Hello } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import type { AgentPlugin } from '../agent.js';
import type { JobHooks, JobManager, RebuildResult } from '../jobs/manager.js';
import type { CurrentJob } from '../jobs/outbox.js';
import type { HubConnection } from '../net/hub-connection.js';
import { currentSystemPath, profileGeneration } from '../system.js';
import { reactivate } from './activate.js';
import { ConnectionProof, type ReconnectingAgent } from './connection-proof.js';
import { clearGuard, readGuard, writeGuard, type GuardRecord, type GuardedAction } from './state.js';

/** What the guard needs from the agent (an interface, so tests can drive it alone). */
export interface GuardedAgent extends ReconnectingAgent {
  readonly jobs: JobManager;
}

export interface RollbackGuardOptions {
  agent: GuardedAgent;
  stateDir: string;
  currentSystem: string;
  systemProfile: string;
  /** Environment for nix-env and switch-to-configuration (the rebuild's). */
  env: Record<string, string>;
  timeoutMs: number;
  /** false: new jobs are not guarded (a record left on disk is still honoured). */
  enabled: boolean;
  log: Logger;
}

type Verdict = RebuildResult;

export function isGuarded(action: string): action is GuardedAction {
  return action === 'switch' || action === 'test';
}

/** "90 s", "1.5 s", "250 ms": for reasons a human reads. */
export function seconds(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

export class RollbackGuard implements JobHooks, AgentPlugin {
  private conn: HubConnection | null = null;
  private readonly proof: ConnectionProof;
  /** During a job: the record written by prepare(). */
  private current: GuardRecord | null = null;
  /** At start: a record left by the previous run of the agent, and its job if it died in it. */
  private leftover: GuardRecord | null = null;
  private takenOver: CurrentJob | null = null;

  constructor(private readonly o: RollbackGuardOptions) {
    this.proof = new ConnectionProof(o.agent);
  }

  /** Deciding a switch right now (a job's window, or one left from before a restart). */
  get busy(): boolean {
    return this.current !== null || this.leftover !== null;
  }

  // ---- agent start: finish what a previous run left ------------------------

  /**
   * Call before agent.run(): reads the record and, if the agent died inside
   * the guarded job, takes that job over so it is not reported as merely
   * "interrupted": the guard reports its real verdict instead.
   */
  async atStart(): Promise<void> {
    const g = await readGuard(this.o.stateDir);
    if (!g) return;
    this.leftover = g;
    const marker = await this.o.agent.jobs.outbox.readRunning();
    if (marker && marker.jobId === g.jobId) {
      this.takenOver = marker;
      await this.o.agent.jobs.outbox.clearRunning();
    }
    this.o.log.warn({ jobId: g.jobId, phase: g.phase, previousSystem: g.previousSystem, deadline: g.deadline },
      'rollback guard: found an undecided switch from before this agent started');
  }

  /** Run beside agent.run(): decides the leftover record, then reports the job it took over. */
  async resume(): Promise<void> {
    const g = this.leftover;
    if (!g) return;
    const say = (line: string): void => this.say(g.jobId, line);
    let verdict: Verdict;
    try {
      verdict = await this.decideAfterRestart(g, say);
    } catch (err) {
      verdict = { outcome: 'failure', exitCode: null, reason: `rollback guard error after restart: ${(err as Error).message}` };
    }
    this.o.log.info({ jobId: g.jobId, outcome: verdict.outcome, reason: verdict.reason }, 'rollback guard: decided after restart');
    // Report first, then let go: until the result is in the outbox, a hello
    // must still name the job as running. A connection made in between (the
    // rollback may just have brought the network back) would otherwise tell
    // the hub the job is gone, and the hub would close it as interrupted.
    const job = this.takenOver;
    if (job) await this.report(job, verdict);
    this.leftover = null;
    this.takenOver = null;
  }

  private async decideAfterRestart(g: GuardRecord, say: (l: string) => void): Promise<Verdict> {
    if (g.phase === 'switching') {
      if (!(await this.systemChanged(g))) {
        await clearGuard(this.o.stateDir);
        return { outcome: 'interrupted', exitCode: null, reason: `the agent stopped during the ${g.action} before the system changed; nothing to roll back` };
      }
      // The agent died while the switch ran (a switch restarting the agent's
      // own service does that): the window starts now.
      g = { ...g, phase: 'confirming', deadline: new Date(Date.now() + g.timeoutMs).toISOString() };
      await this.recordWindow(g, say);
    }
    say(`rollback guard: the agent restarted inside the window of a ${g.action}; deciding now`);
    return this.confirmOrRollBack(g, say, { restarted: true });
  }

  // ---- job hooks -----------------------------------------------------------

  async prepare(job: JobStart, line: (data: string) => void): Promise<void> {
    this.current = null;
    if (this.leftover && isGuarded(job.action)) {
      // The restarted agent is still deciding the previous switch; a new one now would record the unconfirmed system as "good".
      throw new Error(`the previous ${this.leftover.action} (job ${this.leftover.jobId}) is still being confirmed or rolled back; try again shortly`);
    }
    if (!this.o.enabled || !isGuarded(job.action)) return;
    const previousSystem = await currentSystemPath(this.o.currentSystem);
    if (!previousSystem) {
      line(`rollback guard: ${this.o.currentSystem} does not resolve; nothing to return to, this ${job.action} is not guarded`);
      return;
    }
    const rec: GuardRecord = {
      version: 1, jobId: job.jobId, action: job.action, previousSystem,
      previousProfile: await realpath(this.o.systemProfile).catch(() => null),
      previousGeneration: await profileGeneration(this.o.systemProfile),
      phase: 'switching', recordedAt: new Date().toISOString(), deadline: null, timeoutMs: this.o.timeoutMs,
    };
    await writeGuard(this.o.stateDir, rec); // a throw fails the job: never switch unguarded by accident
    this.current = rec;
    // Before anything changes (the switch may cut the network): if the
    // connection drops during this job, the hub waits for the verdict.
    this.conn?.send({ type: 'job.guarded', jobId: job.jobId, withinMs: this.o.timeoutMs });
    line(`rollback guard: recorded ${previousSystem}${rec.previousGeneration !== null ? ` (profile generation ${rec.previousGeneration})` : ''}; `
      + `after the ${job.action} a fresh connection to the hub must succeed within ${seconds(this.o.timeoutMs)}, or it is re-activated`);
  }

  async settle(job: JobStart, result: RebuildResult, line: (data: string) => void): Promise<RebuildResult> {
    const g = this.current;
    this.current = null;
    if (!g || g.jobId !== job.jobId) return result;
    const changed = await this.systemChanged(g);
    if (result.outcome !== 'success') {
      if (!changed) {
        await clearGuard(this.o.stateDir);
        line(`rollback guard: the ${g.action} failed before changing the system or the profile; nothing to roll back`);
        return result;
      }
      line(`rollback guard: the ${g.action} failed (${result.reason ?? 'non-zero exit'}); re-activating ${g.previousSystem}`);
      const r = await this.rollBack(g, line);
      return r.ok
        ? { outcome: 'rolled-back', exitCode: result.exitCode, reason: `rolled back: ${result.reason ?? `${g.action} failed`}; re-activated ${g.previousSystem}` }
        : { outcome: 'failure', exitCode: result.exitCode, reason: `${result.reason ?? `${g.action} failed`}; rolling back to ${g.previousSystem} also failed: ${r.problem}` };
    }
    if (!changed) {
      await clearGuard(this.o.stateDir);
      line('rollback guard: the running system did not change; nothing to confirm');
      return result;
    }
    const confirming: GuardRecord = { ...g, phase: 'confirming', deadline: new Date(Date.now() + g.timeoutMs).toISOString() };
    await this.recordWindow(confirming, line);
    const verdict = await this.confirmOrRollBack(confirming, line, { restarted: false });
    return verdict.outcome === 'success' ? result : { ...verdict, exitCode: result.exitCode };
  }

  // ---- the decision ----------------------------------------------------------

  /**
   * Record the confirmation window G. If that fails (a full disk: the switch
   * may well have filled it), the decision still runs now, from memory: the
   * system has changed, and skipping the window would leave it unconfirmed
   * with a `switching` record on disk that a restart days later would decide
   * against a stale system (found by review: the job failed with the write's
   * error and the record stayed). The decision clears the record either way;
   * an agent restarted before that finds `switching` and opens a new window.
   */
  private async recordWindow(g: GuardRecord, say: (l: string) => void): Promise<void> {
    try {
      await writeGuard(this.o.stateDir, g);
    } catch (err) {
      this.o.log.error({ jobId: g.jobId, err: (err as Error).message }, 'rollback guard: cannot record the confirmation window; deciding from memory');
      say(`rollback guard: cannot record the confirmation window on disk (${(err as Error).message}); deciding now all the same`);
    }
  }

  private async confirmOrRollBack(g: GuardRecord, say: (l: string) => void, ctx: { restarted: boolean }): Promise<Verdict> {
    // Wall-clock deadline (it must survive a reboot), capped by the window
    // itself: a clock that jumped back across a reboot must not stretch it.
    const remaining = Math.min(Date.parse(g.deadline ?? '') - Date.now(), g.timeoutMs);
    const now = await currentSystemPath(this.o.currentSystem);
    let ok = false;
    if (remaining > 0) {
      const t0 = Date.now();
      if (ctx.restarted) {
        ok = await this.proof.firstSinceStart(remaining);
      } else {
        say(`rollback guard: ${g.action} done, now running ${now}; reconnecting to prove the hub is still reachable (deadline in ${seconds(remaining)})`);
        ok = await this.proof.fresh(remaining);
      }
      if (ok) {
        await clearGuard(this.o.stateDir);
        say(`rollback guard: a fresh connection to the hub succeeded ${seconds(Date.now() - t0)} after the ${g.action}; keeping ${now}`);
        return { outcome: 'success', exitCode: ctx.restarted ? null : 0 };
      }
    }
    const why = remaining > 0
      ? `hub unreachable ${seconds(g.timeoutMs)} after ${g.action}`
      : `hub not reached within ${seconds(g.timeoutMs)} after ${g.action} (the agent was down when the window ended)`;
    say(`rollback guard: ${why}; re-activating ${g.previousSystem}`);
    const r = await this.rollBack(g, say);
    const note = ctx.restarted ? ' (decided by the restarted agent)' : '';
    return r.ok
      ? { outcome: 'rolled-back', exitCode: null, reason: `rolled back: ${why}; re-activated ${g.previousSystem}${note}` }
      : { outcome: 'failure', exitCode: null, reason: `${g.action} not confirmed (${why}) and the rollback to ${g.previousSystem} failed: ${r.problem}${note}` };
  }

  private async rollBack(g: GuardRecord, say: (l: string) => void): Promise<{ ok: boolean; problem?: string }> {
    const r = await reactivate({
      storePath: g.previousSystem, action: g.action, profile: this.o.systemProfile,
      currentSystem: this.o.currentSystem, env: { ...process.env, ...this.o.env } as Record<string, string>, say,
    });
    // Decided either way: a failed rollback is reported, not retried at every start.
    await clearGuard(this.o.stateDir);
    if (r.ok) {
      this.o.log.warn({ jobId: g.jobId, system: g.previousSystem, newGeneration: r.newGenerationCreated }, 'rollback guard: rolled back');
      say(`rollback guard: ${g.previousSystem} is active again${r.newGenerationCreated ? ' (the profile has a new generation pointing back to it)' : ''}`);
    } else {
      this.o.log.error({ jobId: g.jobId, system: g.previousSystem, problem: r.problem }, 'rollback guard: rollback failed');
    }
    return r;
  }

  private async systemChanged(g: GuardRecord): Promise<boolean> {
    if ((await currentSystemPath(this.o.currentSystem)) !== g.previousSystem) return true;
    if (g.action !== 'switch') return false;
    return (await realpath(this.o.systemProfile).catch(() => null)) !== g.previousProfile;
  }

  // ---- plugin side -------------------------------------------------------------

  async helloFields(): Promise<Partial<Omit<Hello, 'type'>>> {
    // While a restarted agent decides the job it died in, the hub keeps that job open.
    return this.takenOver ? { runningJobId: this.takenOver.jobId } : {};
  }

  onConnected(conn: HubConnection): void {
    this.conn = conn;
    this.proof.connected();
    // Still switching on a new connection (the hub restarted meanwhile): that hub
    // has not heard the announcement, and would call the job interrupted when
    // the guard drops the connection to prove the hub is reachable.
    const g = this.current;
    if (g && g.phase === 'switching') conn.send({ type: 'job.guarded', jobId: g.jobId, withinMs: g.timeoutMs });
  }

  onDisconnected(): void {
    this.conn = null;
  }

  /** A progress line for the job's live output when connected; always logged. */
  private say(jobId: string, data: string): void {
    this.o.log.info({ jobId }, data);
    if (this.conn?.isOpen) this.conn.send({ type: 'job.output', jobId, stream: 'note', data: `bento: ${data}` });
  }

  private async report(job: CurrentJob, v: Verdict): Promise<void> {
    const end: JobEnd = {
      type: 'job.end', jobId: job.jobId, action: job.action, outcome: v.outcome, exitCode: v.exitCode, startedAt: job.startedAt,
      durationMs: Math.max(0, Date.now() - Date.parse(job.startedAt)), ...(v.reason ? { reason: v.reason } : {}),
      system: await currentSystemPath(this.o.currentSystem), generation: await profileGeneration(this.o.systemProfile),
    };
    // Durable first; the next connection replays it if this one is gone.
    await this.o.agent.jobs.outbox.put(end);
    if (this.conn?.isOpen) this.conn.send(end);
  }
}

export type { GuardRecord };
