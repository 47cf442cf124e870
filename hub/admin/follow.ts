// Following triggered jobs on the event bus, wherever they run. The
// subscription is made before any trigger is sent: a job dispatched by
// another hub (the host is held there) or moved to another hub mid-job still
// reaches this one through the shared bus, and what it says before the
// trigger's answer names its id is kept (per host, bounded) and replayed once
// it does. Output lines carry their place in the job's output (seq): a
// repeat is dropped, and a gap (events are at most once across hubs) is
// filled from the stored output before the line that revealed it.
import type { Logger } from '../../common/platform/log.js';
import type { EventBus, JobBusEvent, Subscription } from '../events/types.js';
import type { JobStore } from '../store/jobs.js';
import type { Reply } from './server.js';

/** Events kept per host while its trigger is in flight (other jobs of the host included). */
const MAX_EARLY = 10_000;
/** A single host is followed on its own subject; several on the whole bus. */
const HOST_FILTER_MAX = 1;

/** A followed job: the last output seq shown, and the events waiting behind a gap being filled from the store. */
interface Track { last: number; chain: Promise<void> | null; waiting: number }

export interface FollowDeps {
  bus: EventBus;
  jobs: Pick<JobStore, 'readOutput'>;
  reply: Reply;
  log: Logger;
  /** Called once per followed job, after its end went out. */
  ended: (jobId: string) => void;
}

export class JobFollower {
  /** Per host whose trigger is in flight, what its jobs said before the answer (null: nothing yet). */
  private readonly early = new Map<string, JobBusEvent[] | null>();
  private readonly tracks = new Map<string, Track>();
  private sub: Subscription | null = null;

  constructor(private readonly d: FollowDeps, private readonly hosts: ReadonlySet<string>) {}

  /** Subscribe (before any trigger is sent). */
  start(): void {
    const filter = this.hosts.size <= HOST_FILTER_MAX ? { host: [...this.hosts][0]! } : { all: true as const };
    this.sub = this.d.bus.subscribe(filter, (b) => {
      if (b.kind !== 'job' || !this.hosts.has(b.host)) return;
      const e = b.event;
      if (this.tracks.has(e.jobId)) {
        this.deliver(e);
      } else if (this.early.has(e.host)) {
        const kept = this.early.get(e.host);
        if (kept) kept.push(e);
        else this.early.set(e.host, [e]);
      }
    });
  }

  /** HOST's trigger is in flight: keep what its jobs say until the answer. */
  expect(host: string): void {
    if (!this.early.has(host)) this.early.set(host, null);
  }

  /** The trigger of HOST was answered with JOBID: follow it from its first event. */
  follow(host: string, jobId: string): void {
    if (!this.tracks.has(jobId)) {
      this.tracks.set(jobId, { last: 0, chain: null, waiting: 0 });
      const kept = this.early.get(host) ?? [];
      for (let i = Math.max(0, kept.length - MAX_EARLY); i < kept.length; i++) if (kept[i]!.jobId === jobId) this.deliver(kept[i]!);
    }
    this.early.delete(host);
  }

  /** The trigger of HOST was answered without a job to follow. */
  skip(host: string): void {
    this.early.delete(host);
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = null;
    this.early.clear();
  }

  /**
   * Shown at once, in the bus's turn, unless the job's output has a gap to
   * fill from the store first (or events wait behind one): then in order,
   * after it. A fan-out's started and end events cost no promise each.
   */
  private deliver(e: JobBusEvent): void {
    const t = this.tracks.get(e.jobId)!;
    if (t.waiting === 0 && !gapBefore(t, e)) {
      try {
        this.show(t, e);
      } catch (err) {
        this.d.log.warn({ jobId: e.jobId, err: (err as Error).message }, 'following a job failed');
      }
      return;
    }
    t.waiting += 1;
    t.chain = (t.chain ?? Promise.resolve())
      .then(async () => {
        if (e.ev === 'output' && gapBefore(t, e)) await this.fill(t, e.jobId, e.host, e.seq);
        this.show(t, e);
      })
      .catch((err: Error) => this.d.log.warn({ jobId: e.jobId, err: err.message }, 'following a job failed'))
      .then(() => { t.waiting -= 1; });
  }

  private show(t: Track, e: JobBusEvent): void {
    if (e.ev === 'output') {
      if (e.seq <= t.last) return;
      t.last = e.seq;
      // The admin protocol's events (common/protocol/admin.ts): the bus's seq and ts stay inside the hub,
      // and an agent's note goes out as the stderr line it always was ("bento: ...").
      this.d.reply({ ev: 'output', host: e.host, jobId: e.jobId, stream: e.stream === 'note' ? 'stderr' : e.stream, data: e.data });
      return;
    }
    this.d.reply(e);
    if (e.ev === 'end') this.d.ended(e.jobId);
  }

  /** Lines between the last one shown and UPTO that the bus did not bring: from the stored output. */
  private async fill(t: Track, jobId: string, host: string, upTo: number): Promise<void> {
    try {
      for (const l of await this.d.jobs.readOutput(jobId, { afterSeq: t.last })) {
        if (l.seq >= upTo) break;
        t.last = l.seq;
        this.d.reply({ ev: 'output', host, jobId, stream: l.stream === 'note' ? 'stderr' : l.stream, data: l.data });
      }
    } catch (err) {
      this.d.log.warn({ jobId, err: (err as Error).message }, 'cannot read the lines a follower missed');
    }
  }
}

/** An output line past the next one expected: the lines between come from the store. */
function gapBefore(t: Track, e: JobBusEvent): boolean {
  return e.ev === 'output' && e.seq > t.last + 1;
}
