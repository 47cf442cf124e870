// Reboot after a successful switch (or boot) when the kernel, initrd or kernel
// modules changed (decide.ts), if the host opted in (rebootOnKernelChange).
//
// Order keeps the rollback guard correct: these hooks are added AFTER the
// guard's, so settle() only sees a switch the guard already judged good (it
// proved the hub reachable on the new system). The reboot runs in ended(),
// after the result is stored and sent; it waits briefly for the hub's ack,
// and an unacked result is replayed after the reboot anyway. A marker file
// (stateDir/reboot.json) lets the agent report, once it is back through the
// tunnel, that the reboot happened and which system it booted: the marker's
// fields ride in every hello until a welcome answers one (the hub logs it and
// shows it in `status`), and only then is the marker removed.
// rebootMethod "kexec" loads the new kernel first (kexec.ts) and falls back
// to rebootCommand, with the reason logged, when that is not possible.
import { spawn } from 'node:child_process';
import { readFile, realpath, rm, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Hello, JobEnd, JobStart } from '../../common/protocol/messages.js';
import { isJobId } from '../../common/protocol/names.js';
import type { Logger } from '../../common/platform/log.js';
import type { JobHooks, RebuildResult } from '../jobs/manager.js';
import type { AgentPlugin } from '../agent.js';
import { decideReboot, type RebootDecision } from './decide.js';
import { kexecExec, kexecLoad } from './kexec.js';

export interface RebootOptions {
  enabled: boolean;
  /** argv; default ["systemctl", "reboot"]. */
  command: string[];
  /** "kexec": kexec into the new system when possible, else `command` (default "reboot"). */
  method?: 'reboot' | 'kexec';
  currentSystem: string;
  systemProfile: string;
  stateDir: string;
  env?: Record<string, string>;
  log: Logger;
  /** Results not yet acknowledged by the hub (wait for the ack before rebooting). */
  unreported?: () => Promise<string[]>;
  ackWaitMs?: number;
}

export interface RebootMarker {
  jobId: string;
  requestedAt: string;
  from: string;
  to: string;
  changed: string[];
  /** How the agent went down: a kexec, or the reboot command (also after a kexec fell back). */
  method?: 'reboot' | 'kexec';
}

export class RebootHooks implements JobHooks, AgentPlugin {
  private readonly before = new Map<string, string | null>();
  private readonly pending = new Map<string, RebootDecision & { fromSystem: string; toSystem: string }>();
  /** Decisions made (tests, status). */
  readonly decisions: Array<{ jobId: string; decision: RebootDecision }> = [];
  /** The reboot found at start, until a hub has heard of it. */
  private back: RebootMarker | null = null;
  private toldInHello = false;

  constructor(private readonly opts: RebootOptions) {}

  private get marker(): string { return path.join(this.opts.stateDir, 'reboot.json'); }

  async prepare(job: JobStart): Promise<void> {
    if (!this.opts.enabled || (job.action !== 'switch' && job.action !== 'boot')) return;
    this.before.set(job.jobId, await realpath(this.opts.currentSystem).catch(() => null));
  }

  async settle(job: JobStart, result: RebuildResult, line: (data: string) => void): Promise<RebuildResult> {
    const from = this.before.get(job.jobId);
    this.before.delete(job.jobId);
    if (!this.opts.enabled || !from || result.outcome !== 'success') return result;
    const target = job.action === 'boot' ? this.opts.systemProfile : this.opts.currentSystem;
    const to = await realpath(target).catch(() => null);
    if (!to) return result;
    const d = await decideReboot(from, to);
    this.decisions.push({ jobId: job.jobId, decision: d });
    if (d.reboot) {
      line(`${d.changed.join(', ')} changed: rebooting after this job (rebootOnKernelChange${this.opts.method === 'kexec' ? ', by kexec when possible' : ''})`);
      this.pending.set(job.jobId, { ...d, fromSystem: from, toSystem: to });
    } else {
      line('kernel, initrd and kernel modules unchanged: no reboot needed');
    }
    return result;
  }

  async ended(job: JobStart, end: JobEnd): Promise<void> {
    const d = this.pending.get(job.jobId);
    this.pending.delete(job.jobId);
    if (!d || end.outcome !== 'success') return;
    const { log } = this.opts;
    const env = this.opts.env ?? {};
    // Give the hub a moment to acknowledge the result; it is replayed after the reboot otherwise.
    const deadline = Date.now() + (this.opts.ackWaitMs ?? 5000);
    while (this.opts.unreported && Date.now() < deadline && (await this.opts.unreported()).includes(job.jobId)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const marker: RebootMarker = { jobId: job.jobId, requestedAt: new Date().toISOString(), from: d.fromSystem, to: d.toSystem, changed: d.changed, method: 'reboot' };
    if (this.opts.method === 'kexec') {
      const loaded = await kexecLoad(d.toSystem, env);
      if ('plan' in loaded) {
        await this.writeMarker({ ...marker, method: 'kexec' });
        log.warn({ jobId: job.jobId, changed: d.changed, argv: loaded.plan.load }, 'kexec into the new system: kernel, initrd or modules changed');
        const problem = await kexecExec(loaded.plan, env);
        if (!problem) return;
        log.warn({ jobId: job.jobId, reason: problem }, 'kexec failed; rebooting instead');
      } else {
        log.warn({ jobId: job.jobId, reason: loaded.problem }, 'kexec not possible; rebooting instead');
      }
    }
    await this.writeMarker(marker);
    log.warn({ jobId: job.jobId, changed: d.changed, command: this.opts.command }, 'rebooting: kernel, initrd or modules changed');
    const code = await runCommand(this.opts.command, env).catch((err: Error) => { log.error({ err: err.message }, 'cannot run the reboot command'); return null; });
    if (code !== 0) {
      // No reboot is coming: do not report one at the next start.
      log.error({ jobId: job.jobId, command: this.opts.command, exitCode: code }, 'the reboot command failed; the new kernel runs only after a manual reboot');
      await rm(this.marker, { force: true });
    }
  }

  private async writeMarker(m: RebootMarker): Promise<void> {
    await writeFile(`${this.marker}.tmp`, JSON.stringify(m));
    await rename(`${this.marker}.tmp`, this.marker);
  }

  /**
   * At start: a reboot was requested before this start, so the machine (or at
   * least the agent) came back. Logged here; reported to the hub in hello until
   * one welcomes it, then the marker goes.
   */
  async atStart(): Promise<RebootMarker | null> {
    const raw = await readFile(this.marker, 'utf8').catch(() => null);
    if (!raw) return null;
    let m: RebootMarker;
    try {
      m = JSON.parse(raw) as RebootMarker;
      // Its fields go into every hello: one the hub would refuse must never cost the agent its connection.
      if (!isJobId(m.jobId) || typeof m.requestedAt !== 'string' || m.requestedAt.length > 40
        || typeof m.to !== 'string' || m.to.length > 1024) throw new Error('bad marker');
    } catch {
      this.opts.log.warn({ file: this.marker }, 'ignoring an unreadable reboot marker');
      await rm(this.marker, { force: true });
      return null;
    }
    const now = await realpath(this.opts.currentSystem).catch(() => null);
    this.opts.log.info({ jobId: m.jobId, requestedAt: m.requestedAt, method: m.method ?? 'reboot', changed: m.changed, system: now, expected: m.to }, 'back after the reboot requested by a kernel change');
    this.back = m;
    return m;
  }

  async helloFields(): Promise<Partial<Omit<Hello, 'type'>>> {
    const m = this.back;
    if (!m) return {};
    this.toldInHello = true;
    return { rebootJobId: m.jobId, rebootRequestedAt: m.requestedAt, rebootMethod: m.method ?? 'reboot', rebootExpected: m.to };
  }

  /** A welcome answered a hello that carried the report: the hub has it. */
  async onConnected(): Promise<void> {
    if (!this.back || !this.toldInHello) return;
    this.opts.log.info({ jobId: this.back.jobId }, 'told the hub that the agent is back after the reboot');
    this.back = null;
    this.toldInHello = false;
    await rm(this.marker, { force: true });
  }
}

function runCommand(argv: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}
