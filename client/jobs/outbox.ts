// Results the hub has not acknowledged yet, one file per job, so a result
// survives a dropped connection, an agent restart and a reboot. A marker file
// records the job in progress: if the agent dies mid-job, the next start turns
// it into an "interrupted" result instead of leaving the hub waiting forever.
//
// Each result is saved with the host name of the agent that ran it, and an
// agent replays, counts and deletes only its own: a state directory that
// another host's agent used (two agents on one stateDir before the state
// lock, a renamed host) must not have its results reported as this host's,
// nor deleted when the hub refuses them. Results saved before names were
// recorded have none and count as this agent's (the upgrade path).
//
// The outbox is bounded (OUTBOX_LIMITS): a hub that never acknowledges must
// not fill the disk, and hello.unreported carries at most MAX_UNREPORTED ids.
import { lstat, readdir, readFile, unlink, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeJsonAtomic } from '../../common/platform/atomic.js';
import { silentLogger, type Logger } from '../../common/platform/log.js';
import { MAX_UNREPORTED, fitJobEnd, type Action, type JobEnd } from '../../common/protocol/messages.js';
import { JOB_ID_RE as ID } from '../../common/protocol/names.js';
import { overLimit, type SpoolLimits } from '../spool-cap.js';

/** Far above any result the protocol accepts (reason 4 KiB, system 1 KiB): a bigger file is not a result. */
const MAX_FILE_BYTES = 64 * 1024;

/** Default bound: as many results as a hello can name, and 1 MiB (a typical result is under 1 KiB). */
export const OUTBOX_LIMITS: SpoolLimits = { maxEntries: MAX_UNREPORTED, maxBytes: 1024 * 1024 };

export interface CurrentJob { jobId: string; action: Action; startedAt: string; pid: number; host?: string }

export interface OutboxOptions {
  /** This agent's host name, saved with every result and marker. Without it, everything counts as ours. */
  host?: string;
  log?: Logger;
  limits?: SpoolLimits;
}

/** One result file as found on disk. */
interface Saved { file: string; bytes: number; host: string | null; end: JobEnd }

export class Outbox {
  private readonly dir: string;
  private readonly marker: string;
  private readonly host: string | null;
  private readonly log: Logger;
  private readonly limits: SpoolLimits;
  /** Files already reported as not ours (logged once per process, not at every hello). */
  private readonly reported = new Set<string>();
  /** Trims run one at a time: two at once would each drop "the oldest" and drop one too many. */
  private trimming: Promise<void> = Promise.resolve();

  constructor(stateDir: string, opts: OutboxOptions = {}) {
    this.dir = path.join(stateDir, 'outbox');
    this.marker = path.join(stateDir, 'current-job.json');
    this.host = opts.host ?? null;
    this.log = opts.log ?? silentLogger();
    this.limits = opts.limits ?? OUTBOX_LIMITS;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.trim(); // an outbox filled by an older agent that had no bound
  }

  async put(end: JobEnd): Promise<void> {
    if (!ID.test(end.jobId)) return;
    const fit = fitJobEnd(end);
    await writeJsonAtomic(this.file(end.jobId), this.host ? { ...fit, host: this.host } : fit, { mode: 0o600 });
    await this.trim();
  }

  /** The hub acknowledged jobId: forget it, unless the file is another host's (a hub cannot ack those for us). */
  async remove(jobId: string): Promise<void> {
    if (!ID.test(jobId)) return;
    const file = this.file(jobId);
    const saved = await this.read(file);
    if (saved && !this.ours(saved)) {
      this.log.warn({ jobId, savedBy: saved.host }, 'acknowledged a result another host saved in this state directory; keeping it');
      return;
    }
    await unlink(file).catch(() => undefined);
  }

  /** This agent's unacknowledged results, oldest first (without the saved host name: they go on the wire as they are). */
  async list(): Promise<JobEnd[]> {
    // fitJobEnd again: results saved by agents that did not cut their reasons.
    return (await this.scan()).filter((s) => this.ours(s)).map((s) => fitJobEnd(s.end));
  }

  async markRunning(job: CurrentJob): Promise<void> {
    await writeJsonAtomic(this.marker, this.host ? { ...job, host: this.host } : job, { mode: 0o600 });
  }

  async clearRunning(): Promise<void> {
    await unlink(this.marker).catch(() => undefined);
  }

  /** The job a previous run of this host's agent left running; another host's marker is not ours to report. */
  async readRunning(): Promise<CurrentJob | null> {
    let job: CurrentJob;
    try {
      job = JSON.parse(await readFile(this.marker, 'utf8')) as CurrentJob;
    } catch {
      return null;
    }
    if (this.host && typeof job.host === 'string' && job.host !== this.host) {
      this.log.warn({ jobId: job.jobId, savedBy: job.host }, 'the running-job marker in this state directory belongs to another host; ignoring it');
      return null;
    }
    return job;
  }

  private file(jobId: string): string {
    return path.join(this.dir, `${jobId}.json`);
  }

  private ours(s: Saved): boolean {
    return s.host === null || this.host === null || s.host === this.host;
  }

  /** Every result file, oldest first; foreign ones are logged (once) here. */
  private async scan(): Promise<Saved[]> {
    const out: Saved[] = [];
    for (const f of (await readdir(this.dir)).sort()) {
      if (!f.endsWith('.json') || !ID.test(f.slice(0, -5))) continue;
      const s = await this.read(path.join(this.dir, f));
      if (s) out.push(s);
    }
    return out.sort((a, b) => a.end.startedAt.localeCompare(b.end.startedAt) || a.file.localeCompare(b.file));
  }

  private async read(file: string): Promise<Saved | null> {
    const st = await lstat(file).catch(() => null);
    if (!st?.isFile()) return null;
    if (st.size > MAX_FILE_BYTES) {
      this.once(file, () => this.log.warn({ file, bytes: st.size }, 'outbox file too large to be a job result; leaving it alone'));
      return null;
    }
    let v: unknown;
    try {
      v = JSON.parse(await readFile(file, 'utf8'));
    } catch {
      return null; // atomic writes make torn files impossible; skip anything foreign
    }
    if (typeof v !== 'object' || v === null || typeof (v as JobEnd).jobId !== 'string' || typeof (v as JobEnd).startedAt !== 'string') return null;
    const { host, ...end } = v as JobEnd & { host?: unknown };
    const saved: Saved = { file, bytes: st.size, host: typeof host === 'string' ? host : null, end };
    if (!this.ours(saved)) {
      this.once(file, () => this.log.warn({ jobId: end.jobId, savedBy: saved.host, host: this.host },
        'the outbox holds a result saved by another host\'s agent (did two agents share this stateDir?); not replaying it, not deleting it'));
    }
    return saved;
  }

  private once(key: string, say: () => void): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    say();
  }

  /** Drop this host's oldest results until the rest fit the limits; each drop is logged. */
  private trim(): Promise<void> {
    const run = this.trimming.then(async () => {
      const own = (await this.scan()).filter((s) => this.ours(s));
      for (const s of overLimit(own, this.limits)) {
        await unlink(s.file).catch(() => undefined);
        this.log.warn({ jobId: s.end.jobId, startedAt: s.end.startedAt, outcome: s.end.outcome, results: own.length, ...this.limits },
          'outbox full (the hub has not acknowledged these results): dropped the oldest');
      }
    }).catch((err: Error) => {
      // The result itself is on disk; only the bound could not be applied this time.
      this.log.error({ err: err.message }, 'could not apply the outbox limit');
    });
    this.trimming = run;
    return run;
  }
}
