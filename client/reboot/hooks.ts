// Reboot after a successful switch (or boot) when the kernel, initrd or kernel
// modules changed (decide.ts), if the host opted in (rebootOnKernelChange).
//
// Order keeps the rollback guard correct: these hooks are added AFTER the
// guard's, so settle() only sees a switch the guard already judged good (it
// proved the hub reachable on the new system). The reboot runs in ended(),
// after the result is stored and sent; it waits briefly for the hub's ack,
// and an unacked result is replayed after the reboot anyway. A marker file
// (stateDir/reboot.json) lets the agent report, once it is back through the
// tunnel, that the reboot happened and which system it booted.
import { spawn } from 'node:child_process';
import { readFile, realpath, rm, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { JobEnd, JobStart } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import type { JobHooks, RebuildResult } from '../jobs/manager.js';
import { decideReboot, type RebootDecision } from './decide.js';

export interface RebootOptions {
  enabled: boolean;
  /** argv; default ["systemctl", "reboot"]. */
  command: string[];
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
}

export class RebootHooks implements JobHooks {
  private readonly before = new Map<string, string | null>();
  private readonly pending = new Map<string, RebootDecision & { fromSystem: string; toSystem: string }>();
  /** Decisions made (tests, status). */
  readonly decisions: Array<{ jobId: string; decision: RebootDecision }> = [];

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
      line(`${d.changed.join(', ')} changed: rebooting after this job (rebootOnKernelChange)`);
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
    const marker: RebootMarker = { jobId: job.jobId, requestedAt: new Date().toISOString(), from: d.fromSystem, to: d.toSystem, changed: d.changed };
    await writeFile(`${this.marker}.tmp`, JSON.stringify(marker));
    await rename(`${this.marker}.tmp`, this.marker);
    // Give the hub a moment to acknowledge the result; it is replayed after the reboot otherwise.
    const deadline = Date.now() + (this.opts.ackWaitMs ?? 5000);
    while (this.opts.unreported && Date.now() < deadline && (await this.opts.unreported()).includes(job.jobId)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    this.opts.log.warn({ jobId: job.jobId, changed: d.changed, command: this.opts.command }, 'rebooting: kernel, initrd or modules changed');
    await runCommand(this.opts.command, this.opts.env ?? {});
  }

  /** At start: if a reboot was requested, report it (it came back) and clear the marker. */
  async atStart(): Promise<RebootMarker | null> {
    const raw = await readFile(this.marker, 'utf8').catch(() => null);
    if (!raw) return null;
    await rm(this.marker, { force: true });
    try {
      const m = JSON.parse(raw) as RebootMarker;
      const now = await realpath(this.opts.currentSystem).catch(() => null);
      this.opts.log.info({ jobId: m.jobId, requestedAt: m.requestedAt, changed: m.changed, system: now, expected: m.to }, 'back after the reboot requested by a kernel change');
      return m;
    } catch {
      return null;
    }
  }
}

function runCommand(argv: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}
