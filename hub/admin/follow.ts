// Following triggered jobs on the event bus, wherever they run. The
// subscription is made before any trigger is sent: a job dispatched by
// another hub (the host is held there) or moved to another hub mid-job still
// reaches this one through the shared bus, and what it says before the
// trigger's answer names its id is kept (per host, bounded) and replayed once
// it does. Each followed job's events are shown in order, each line once,
// lines the bus lost filled from the stored output (output-order.ts, as a
// dashboard job page shows them). An end the bus lost is found in the job's record, checked every few
// seconds (this hub's view of the records is local: cheap), so a follower
// never waits forever.
import type { Logger } from '../../common/platform/log.js';
import type { EventBus, JobBusEvent, Subscription } from '../events/types.js';
import { END_CHECK_MS, endForAdmin } from '../jobs/end-event.js';
import type { JobStore } from '../store/jobs.js';
import { OutputOrder } from './output-order.js';
import type { Reply } from './server.js';
import { outputForAdmin, skippedForAdmin } from './admin-output.js';

/** Events kept per host while its trigger is in flight (other jobs of the host included); past it, the oldest output lines go. */
const MAX_EARLY = 10_000;
/** A single host is followed on its own subject; several on the whole bus. */
const HOST_FILTER_MAX = 1;

export interface FollowDeps {
  bus: EventBus;
  /** Stored output (gaps); with `get`, the records too (an end the bus lost). */
  jobs: Pick<JobStore, 'readOutput'> & Partial<Pick<JobStore, 'get'>>;
  reply: Reply;
  log: Logger;
  /** Called once per followed job, after its end went out. */
  ended: (jobId: string) => void;
  /** How often open jobs' records are checked, ms (default 2000). */
  checkMs?: number;
  /** How long a gap waits for its lines to be stored, ms (default follow-fill.ts FILL_WAIT_MS, output-order.ts). */
  fillWaitMs?: number;
}

export class JobFollower {
  /** Per host whose trigger is in flight, what its jobs said before the answer (null: nothing yet). */
  private readonly early = new Map<string, JobBusEvent[] | null>();
  /** Per followed job, its output in order (output-order.ts). */
  private readonly tracks = new Map<string, OutputOrder>();
  private sub: Subscription | null = null;
  private check: NodeJS.Timeout | null = null;

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
        if (kept) keep(kept, e);
        else this.early.set(e.host, [e]);
      }
    });
    if (this.d.jobs.get) {
      this.check = setInterval(() => this.checkRecords(), this.d.checkMs ?? END_CHECK_MS);
      this.check.unref();
    }
  }

  /** HOST's trigger is in flight: keep what its jobs say until the answer. */
  expect(host: string): void {
    if (!this.early.has(host)) this.early.set(host, null);
  }

  /** The trigger of HOST was answered with JOBID: follow it from its first event. */
  follow(host: string, jobId: string): void {
    if (!this.tracks.has(jobId)) {
      this.tracks.set(jobId, this.order(host, jobId));
      // Output lines dropped while kept (keep()) show as a gap here, filled from the store.
      for (const e of this.early.get(host) ?? []) if (e.jobId === jobId) this.deliver(e);
    }
    this.early.delete(host);
  }

  /** The trigger of HOST was answered without a job to follow. */
  skip(host: string): void {
    this.early.delete(host);
  }

  /** Events kept for HOST's trigger in flight (bounded by MAX_EARLY). */
  keptFor(host: string): number {
    return this.early.get(host)?.length ?? 0;
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = null;
    if (this.check) clearInterval(this.check);
    this.check = null;
    this.early.clear();
  }

  /** Open jobs whose record is final: the bus lost their end (or it is late); said from the record, after a last fill. */
  private checkRecords(): void {
    for (const [jobId, t] of this.tracks) {
      if (t.ended) continue;
      t.endFrom(this.d.jobs.get!(jobId));
    }
  }

  /** An order (output-order.ts) for JOBID of HOST, whose lines and end go to the admin. */
  private order(host: string, jobId: string): OutputOrder {
    const { reply } = this.d;
    return new OutputOrder({ jobs: this.d.jobs, log: this.d.log, ...(this.d.fillWaitMs !== undefined ? { fillWaitMs: this.d.fillWaitMs } : {}) }, {
      // The bus's seq stays inside the hub here (admin-output.ts).
      line: (l) => reply(outputForAdmin(host, jobId, l)),
      skipped: (lines, why) => reply(skippedForAdmin(host, jobId, lines, why)),
      event: (e) => {
        if (e.ev !== 'end') return reply(e);
        reply(endForAdmin(e));
        this.d.ended(e.jobId);
      },
    });
  }

  private deliver(e: JobBusEvent, fromRecord = false): void {
    this.tracks.get(e.jobId)!.deliver(e, fromRecord);
  }
}

/**
 * Keep E for a trigger in flight. Past MAX_EARLY the oldest output lines go
 * (a quarter at once, so a flood does not scan the list per line): the
 * follower refills them from the store by seq. Started and end events stay.
 */
function keep(kept: JobBusEvent[], e: JobBusEvent): void {
  kept.push(e);
  if (kept.length <= MAX_EARLY) return;
  let drop = MAX_EARLY >> 2;
  let w = 0;
  for (let r = 0; r < kept.length; r++) {
    const k = kept[r]!;
    if (drop > 0 && k.ev === 'output') { drop -= 1; continue; }
    kept[w++] = k;
  }
  kept.length = w;
}
