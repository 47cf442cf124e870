// Rollback-guarded jobs (job.guarded, docs/rollback.md): during such a switch
// the connection may drop on purpose or because of the switch, and the
// agent's verdict follows when it is back. So a guarded job is not
// interrupted when its connection drops; the hub waits the agent's announced
// window plus a margin, and only then calls it interrupted.

/** Extra wait on top of the agent's announced window (the switch itself, reconnect backoff, handshake). */
const GUARD_GRACE_MS = 10_000;
const MAX_WINDOW_MS = 24 * 3600_000;

interface Window { jobId: string; windowMs: number; timer: NodeJS.Timeout | null }

export class GuardWindows {
  private readonly byHost = new Map<string, Window>();

  /** The agent announced a guarded switch for its active job. */
  arm(host: string, jobId: string, withinMs: number): void {
    this.byHost.set(host, { jobId, windowMs: Math.min(withinMs, MAX_WINDOW_MS) + GUARD_GRACE_MS, timer: null });
  }

  /** The host is back: stop waiting; keep the window only while its hello still names the job. */
  hello(host: string, runningJobId: string | null | undefined): void {
    const w = this.byHost.get(host);
    if (!w) return;
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
    if (w.jobId !== runningJobId) this.byHost.delete(host);
  }

  /** The job's verdict arrived. */
  ended(host: string, jobId: string): void {
    const w = this.byHost.get(host);
    if (w?.jobId !== jobId) return;
    if (w.timer) clearTimeout(w.timer);
    this.byHost.delete(host);
  }

  /** The connection dropped: true when `jobId` is guarded, and then `expire` runs after its window unless the host is back. */
  wait(host: string, jobId: string, expire: () => void): boolean {
    const w = this.byHost.get(host);
    if (w?.jobId !== jobId) return false;
    if (w.timer) clearTimeout(w.timer);
    w.timer = setTimeout(expire, w.windowMs);
    w.timer.unref();
    return true;
  }

  /** The window of `jobId` ran out: forget it; true if it was still the host's guarded job. */
  expired(host: string, jobId: string): boolean {
    if (this.byHost.get(host)?.jobId !== jobId) return false;
    this.byHost.delete(host);
    return true;
  }

  /** The host went to another hub: its window is that hub's to keep. */
  forget(host: string): void {
    const w = this.byHost.get(host);
    if (w?.timer) clearTimeout(w.timer);
    this.byHost.delete(host);
  }

  close(): void {
    for (const w of this.byHost.values()) if (w.timer) clearTimeout(w.timer);
  }
}
