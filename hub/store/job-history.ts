// Finished jobs per host (JobStore, jobs.ts): the newest `history` are kept,
// older ones pruned (record and output), and the stored output of a host's
// finished jobs together is kept under limits.hostOutputBytes by dropping
// the oldest jobs' output whole. O(1) per job end: an ordered id list per
// host, never a scan of the store.
import type { Logger } from '../../common/platform/log.js';
import type { JobRecord } from './job-record.js';
import type { OutputCapStats } from './output-cap.js';
import type { JobOutputStore, KeyedStore } from './types.js';

export interface FinishedJobsDeps {
  records: KeyedStore<JobRecord>;
  output: JobOutputStore;
  /** Finished jobs kept per host. */
  history: number;
  /** limits.hostOutputBytes. */
  hostOutputBytes: number;
  /** Counted here: droppedJobs, droppedBytes. */
  stats: OutputCapStats;
  log: Logger;
  /** A record as readers see it (this hub's pending write first). */
  get(id: string): JobRecord | undefined;
  /** Write a changed record (its output marked dropped). */
  rewrite(rec: JobRecord): Promise<void>;
}

export class FinishedJobs {
  /** Finished job ids per host, oldest first. */
  private readonly byHost = new Map<string, string[]>();

  constructor(private readonly d: FinishedJobsDeps) {}

  /**
   * REC finished: keep the newest `history` finished jobs of its host; drop
   * the oldest beyond that. Returns the work started (settled once it is
   * durable), or null when there is none (no promise per job end for nothing).
   */
  note(rec: JobRecord): Promise<unknown> | null {
    let ids = this.byHost.get(rec.host);
    if (!ids) this.byHost.set(rec.host, (ids = []));
    if (ids.includes(rec.id)) return null; // finished again (a late verdict after "interrupted"): same slot
    ids.push(rec.id);
    const drop = ids.length > this.d.history ? ids.splice(0, ids.length - this.d.history) : [];
    const work: Array<Promise<unknown>> = [];
    for (const id of drop) {
      if (this.d.records.get(id)?.host !== rec.host) continue;
      // Eventually: a pruned record that a crash brings back is pruned again at the next start.
      work.push(this.d.records.delete(id, { eventually: true }), this.d.output.remove(id).catch(() => undefined));
    }
    work.push(...this.keepHostTotal(rec.host, ids));
    return work.length > 0 ? Promise.all(work) : null;
  }

  /**
   * limits.hostOutputBytes: the stored output of a host's finished jobs
   * together. Over it, the oldest jobs' output is dropped whole (their
   * records stay, saying so), never the newest job's.
   */
  private keepHostTotal(host: string, ids: string[]): Array<Promise<unknown>> {
    let total = 0;
    for (const id of ids) total += this.storedBytes(id);
    const work: Array<Promise<unknown>> = [];
    for (let i = 0; i < ids.length - 1 && total > this.d.hostOutputBytes; i++) {
      const id = ids[i]!;
      const rec = this.d.get(id);
      const bytes = this.storedBytes(id);
      if (!rec || rec.host !== host || bytes === 0) continue;
      total -= bytes;
      this.d.stats.droppedJobs++;
      this.d.stats.droppedBytes += bytes;
      this.d.log.info({ host, jobId: id, bytes }, 'dropped the stored output of an old job: the host\'s jobs are over limits.hostOutputBytes');
      work.push(
        this.d.output.remove(id).catch(() => undefined),
        this.d.rewrite({ ...rec, output: { ...rec.output!, dropped: true } }).catch(() => undefined),
      );
    }
    return work;
  }

  private storedBytes(id: string): number {
    const o = this.d.get(id)?.output;
    return o && !o.dropped ? o.bytes : 0;
  }
}
