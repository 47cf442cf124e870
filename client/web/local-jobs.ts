// What the local page knows about jobs on this host: the running and the last
// job with their output (bounded), the recent history (kept on disk), the
// upgrades requested here and the run that serves each (requests made while a
// job runs wait, and coalesce: client/jobs/follow-ups.ts), and the streams that
// follow them: the page's own, and one job's for `bento-client upgrade`.
import type http from 'node:http';
import { readFile } from 'node:fs/promises';
import { writeJsonAtomic } from '../../common/platform/atomic.js';
import type { Logger } from '../../common/platform/log.js';
import { sendText } from '../../common/platform/web.js';
import { SseStream } from '../../common/platform/web-sse.js';
import type { JobEnd, JobStart, OutputStream } from '../../common/protocol/messages.js';
import { agentJobOrigin } from '../../common/protocol/names.js';
import type { LogLine } from '../../common/platform/log-view.js';
import type { JobHooks } from '../jobs/manager.js';
import { stateHtml, jobsHtml, type LocalJob, type LocalState } from './page.js';

const HISTORY_MAX = 20;
const OUTPUT_MAX_BYTES = 512 * 1024;

/** lines: the tail of the output, numbered 1, 2, 3 per job (seq) and stamped when the agent saw them. */
export interface JobView { job: LocalJob; lines: LogLine[]; bytes: number; dropped: number }
interface Stream { sse: SseStream; want: string | null }

export interface LocalJobsOptions {
  historyFile: string;
  log: Logger;
  /** The page's state block, sent to open pages whenever something changes. */
  state(): Promise<LocalState>;
  /** A job ended (before anything is sent about it). */
  onEnd(job: LocalJob, end: JobEnd): void;
}

export class LocalJobs implements JobHooks {
  private current: JobView | null = null;
  private last: JobView | null = null;
  private history: LocalJob[] = [];
  /** Local requests not yet started -> the job that was running when they were made. */
  private readonly requested = new Map<string, string | null>();
  /** A request merged into another run (coalescing) -> the job that ran for it. */
  private readonly aliases = new Map<string, string>();
  private readonly streams = new Set<Stream>();
  private stateTimer: NodeJS.Timeout | null = null;

  constructor(private readonly o: LocalJobsOptions) {}

  /** The job running now, if any. */
  get running(): LocalJob | null {
    return this.current?.job ?? null;
  }

  /** Local requests not started yet. */
  get queued(): number {
    return this.requested.size;
  }

  // ------------------------------------------------------------ job hooks

  async prepare(job: JobStart): Promise<void> {
    this.begin(job);
  }

  output(job: JobStart, stream: OutputStream, data: string): void {
    const v = this.begin(job);
    const line: LogLine = { seq: v.dropped + v.lines.length + 1, ts: Date.now(), stream, data };
    v.lines.push(line);
    v.bytes += data.length + 8;
    while (v.bytes > OUTPUT_MAX_BYTES && v.lines.length > 1) {
      v.bytes -= v.lines.shift()!.data.length + 8;
      v.dropped++;
    }
    // A page that does not read has lines skipped (with a note) past its stream's bound (common/platform/follower.ts).
    for (const s of this.streams) if (this.follows(s, job.jobId)) s.sse.send('line', line, job.jobId);
  }

  async ended(job: JobStart, end: JobEnd): Promise<void> {
    const v = this.begin(job);
    Object.assign(v.job, { endedAt: new Date().toISOString(), outcome: end.outcome, exitCode: end.exitCode, durationMs: end.durationMs, reason: end.reason ?? null });
    this.o.onEnd(v.job, end);
    this.last = v;
    if (this.current === v) this.current = null;
    this.history = [{ ...v.job }, ...this.history.filter((h) => h.jobId !== v.job.jobId)].slice(0, HISTORY_MAX);
    const endData = { jobId: v.job.jobId, outcome: end.outcome, exitCode: end.exitCode, durationMs: end.durationMs, reason: end.reason ?? null };
    for (const s of [...this.streams]) {
      if (!this.follows(s, job.jobId)) continue;
      s.sse.send('end', endData);
      if (s.want !== null) s.sse.close();
    }
    this.pushState();
    await writeJsonAtomic(this.o.historyFile, this.history, { mode: 0o600, durable: false }).catch((err: Error) => this.o.log.warn({ err: err.message }, 'could not save the local job history'));
  }

  /** A request waiting behind the running job will not run on its own: INTO's run serves it (its streams follow that run). */
  merged(request: JobStart, into: JobStart): void {
    if (!this.requested.delete(request.jobId)) return;
    this.aliases.set(request.jobId, into.jobId);
    if (this.aliases.size > 200) this.aliases.delete(this.aliases.keys().next().value!);
    this.pushState();
  }

  /** The view of a job, created when its first hook runs (the rebuild's or a pull's prepare line). */
  private begin(job: JobStart): JobView {
    if (this.current?.job.jobId === job.jobId) return this.current;
    if (this.last?.job.jobId === job.jobId) return this.last;
    const origin: LocalJob['origin'] = agentJobOrigin(job.jobId) ?? 'hub';
    const v: JobView = {
      job: { jobId: job.jobId, action: job.action, origin, startedAt: new Date().toISOString(), endedAt: null, outcome: null, exitCode: null, durationMs: null, reason: null },
      lines: [], bytes: 0, dropped: 0,
    };
    this.current = v;
    this.requested.delete(job.jobId);
    for (const s of this.streams) {
      if (s.want === null) {
        s.sse.send('reset', { job: v.job });
      } else if (this.resolve(s.want) === job.jobId) {
        if (s.want !== job.jobId) s.sse.send('note', { text: `bento: your request was merged into job ${job.jobId} (one follow-up run per host)` });
        s.sse.send('started', { jobId: job.jobId, action: job.action });
      }
    }
    this.pushState();
    return v;
  }

  private resolve(id: string): string {
    return this.aliases.get(id) ?? id;
  }

  private follows(s: Stream, jobId: string): boolean {
    return s.want === null || this.resolve(s.want) === jobId;
  }

  /** A local request for job `jobId`, made while `behind` ran (null: nothing ran). */
  request(jobId: string, behind: string | null): void {
    this.requested.set(jobId, behind);
  }

  // ------------------------------------------------------------ views

  /** The running job, then the history. */
  list(): LocalJob[] {
    const running = this.current ? [this.current.job] : [];
    return [...running, ...this.history.filter((h) => h.jobId !== this.current?.job.jobId)];
  }

  /** The output of a job if this host still has it (the running or the last job), else null. */
  view(jobId: string): JobView | null {
    return this.current?.job.jobId === jobId ? this.current : this.last?.job.jobId === jobId ? this.last : null;
  }

  /** The job whose output the page shows: the running one, else the last. */
  shown(): JobView | null {
    return this.current ?? this.last;
  }

  /** Send the state block and the job table to open pages (coalesced within 50 ms). */
  pushState(): void {
    if (this.stateTimer || ![...this.streams].some((s) => s.want === null)) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = null;
      void this.o.state().then((st) => {
        for (const s of this.streams) {
          if (s.want !== null) continue;
          s.sse.send('replace', { id: 'state', html: stateHtml(st).value });
          s.sse.send('replace', { id: 'jobs', html: jobsHtml(this.list()).value });
        }
      });
    }, 50);
    this.stateTimer.unref();
  }

  // ------------------------------------------------------------ streams

  /** The page's stream: state changes, and the output of whatever job runs. */
  pageEvents(res: http.ServerResponse): void {
    const sse = new SseStream(res);
    const s: Stream = { sse, want: null };
    this.streams.add(s);
    sse.onClose(() => this.streams.delete(s));
    const v = this.shown();
    sse.send('reset', { job: v?.job ?? null });
    if (v?.dropped) sse.send('note', { text: `${v.dropped} earlier lines not shown` });
    for (const l of v?.lines ?? []) sse.send('line', l, v!.job.jobId);
    if (v && v.job.outcome) sse.send('end', { jobId: v.job.jobId, outcome: v.job.outcome, exitCode: v.job.exitCode, durationMs: v.job.durationMs, reason: v.job.reason });
    this.pushState();
  }

  /** One job's stream (bento-client upgrade): backlog, live lines, end. Follows a merged request to the run that serves it. */
  jobEvents(res: http.ServerResponse, want: string): void {
    const id = this.resolve(want);
    const v = this.current?.job.jobId === id ? this.current : this.last?.job.jobId === id ? this.last : null;
    const done = this.history.find((h) => h.jobId === id);
    if (!v && !done && !this.requested.has(id)) return sendText(res, 404, 'no such job (only the running, queued and last job can be followed)');
    const sse = new SseStream(res);
    if (want !== id) sse.send('note', { text: `bento: your request was merged into job ${id} (one follow-up run per host)` });
    if (v) {
      sse.send('started', { jobId: id, action: v.job.action });
      if (v.dropped) sse.send('note', { text: `${v.dropped} earlier lines not shown` });
      for (const l of v.lines) sse.send('line', l, id);
    } else if (!done && this.requested.get(id)) {
      sse.send('queued', { jobId: id, behind: this.requested.get(id) });
    }
    const fin = v?.job.outcome ? v.job : done;
    if (fin?.outcome) {
      sse.send('end', { jobId: id, outcome: fin.outcome, exitCode: fin.exitCode, durationMs: fin.durationMs, reason: fin.reason });
      sse.close();
      return;
    }
    const s: Stream = { sse, want };
    this.streams.add(s);
    sse.onClose(() => this.streams.delete(s));
  }

  // ------------------------------------------------------------ lifecycle

  /** The history saved by an earlier run of the agent (none when unreadable). */
  async loadHistory(): Promise<void> {
    try {
      this.history = JSON.parse(await readFile(this.o.historyFile, 'utf8')) as LocalJob[];
      if (!Array.isArray(this.history)) this.history = [];
    } catch {
      this.history = [];
    }
  }

  close(): void {
    if (this.stateTimer) clearTimeout(this.stateTimer);
    for (const s of this.streams) s.sse.close();
    this.streams.clear();
  }
}
