// Apply a new agent program or config without a reboot. The NixOS unit must
// not restart the agent during a switch (the switch is the agent's own job,
// and restarting would kill it), so a switch that upgrades bento-client or
// changes its settings would otherwise only take effect at the next boot.
// Instead the agent notices the change itself and restarts when it is idle:
// no job running, the rollback guard not deciding anything, every result
// acknowledged (or 5 s given for it). It then exits 0 and its supervisor
// (systemd Restart=always) starts the new program with the new config.
//
// A watched path's fingerprint is its realpath plus, for a regular file, a
// hash of its contents: /etc/bento/client.json changes content, and a
// symlink to the package (/etc/bento/package) changes target.
import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { Logger } from '../../common/platform/log.js';

export interface RestartWatchOptions {
  paths: string[];
  log: Logger;
  /** Nothing in progress that a restart would cut short. */
  idle(): boolean;
  /** Results the hub has not acknowledged yet. */
  unreported(): Promise<string[]>;
  /** Stop the agent (its run() returns and the process exits 0). */
  restart(): void;
  checkEveryMs?: number;
}

export async function fingerprint(p: string): Promise<string> {
  const real = await realpath(p).catch(() => null);
  if (!real) return 'missing';
  const st = await stat(real).catch(() => null);
  if (!st?.isFile()) return real;
  return `${real}#${createHash('sha256').update(await readFile(real)).digest('hex')}`;
}

export class RestartWatch {
  private readonly initial = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private changed: string[] = [];
  private restarting = false;

  constructor(private readonly o: RestartWatchOptions) {}

  async start(): Promise<void> {
    for (const p of this.o.paths) this.initial.set(p, await fingerprint(p));
    if (this.o.paths.length === 0) return;
    this.timer = setInterval(() => { void this.check(); }, this.o.checkEveryMs ?? 30_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Also called when a job ends: a switch that changed the agent restarts it right after. */
  async check(): Promise<void> {
    if (this.restarting || this.initial.size === 0) return;
    if (this.changed.length === 0) {
      const now = await Promise.all([...this.initial].map(async ([p, fp]) => ((await fingerprint(p)) === fp ? null : p)));
      this.changed = now.filter((p): p is string => p !== null);
      if (this.changed.length === 0) return;
      this.o.log.info({ changed: this.changed }, 'the agent program or its config changed on disk; restarting when idle to apply it');
    }
    if (!this.o.idle()) return;
    this.restarting = true;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await this.o.unreported()).length > 0) await new Promise((r) => setTimeout(r, 100));
    if (!this.o.idle()) { this.restarting = false; return; } // a job arrived meanwhile: wait for it
    this.stop();
    this.o.log.warn({ changed: this.changed }, 'restarting to apply the new agent program or config');
    this.o.restart();
  }
}
