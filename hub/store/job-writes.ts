// This hub's writes of job records (JobStore, jobs.ts): each stamped by the
// fence, shown to readers at once (the overlay), written after the record's
// previous write (the compare-and-swap needs the revision it produced), and
// tracked until the store acknowledges it (unconfirmed: what durable() must
// not show yet). Fencing itself: jobs.ts header, fenced-write.ts.
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { FencedWriter } from './fenced-write.js';
import { FINAL_STATES, sameRecord, type JobFence, type JobRecord } from './job-record.js';
import type { OpenJobs } from './open-jobs.js';
import type { KeyedStore, StoreChange } from './types.js';

export interface JobWritesDeps {
  records: KeyedStore<JobRecord>;
  log: Logger;
  fence?: JobFence;
  /** Kept current with what readers see. */
  open: OpenJobs;
}

interface Waiting {
  rec: JobRecord;
  eventually: boolean;
  overOpenOnly: boolean;
  done: Promise<void>;
  /** Ends the hold of an eventual write at once (a newer write someone waits for replaced it, or settled()). */
  send?: () => void;
}

/**
 * How long a networked store's eventual write (WriteOptions.eventually: a
 * job's dispatched and running records) is held before it is sent, so that a
 * newer write of the record replaces it instead of following it: the agent's
 * job.started comes within milliseconds of job.start, so a job's dispatched
 * record is not written at all, and a job that ends within the hold costs one
 * write. Replicated writes are what a cluster fan-out spends most on (docs/
 * performance.md: NATS used as much CPU as the three hubs). Other hubs see a
 * job's start this much later; its own hub shows it at once.
 */
export const EVENTUAL_HOLD_MS = 500;
/**
 * While the store is busy (KeyedStore.busy: its writes wait for a turn, as
 * in a fan-out to every host) the hold is renewed, up to this long in all:
 * a held record replaced by the job's result is one write fewer in a queue
 * that is the bottleneck. Other hubs see a job's start this much later at
 * most.
 */
export const EVENTUAL_HOLD_MAX_MS = 10_000;

/** How a record is written (JobStore.save). */
export interface PutOptions {
  eventually?: boolean;
  /** A hub's verdict on an open job: not written over a record that is final by then (fenced-write.ts). */
  overOpenOnly?: boolean;
}

export class JobWrites {
  /** This hub's writes its store does not show yet (a compare-and-swap is visible once acknowledged): read before the store. */
  private readonly overlay = new Map<string, JobRecord>();
  /** Per record, the write in progress: the next one compares against the revision it produced. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Per record, the write waiting for the one in progress (chain()). */
  private readonly waiting = new Map<string, Waiting>();
  /** Per record, this hub's newest write while the store has not acknowledged it (in flight, or failed and retried). */
  private readonly unconfirmed = new Map<string, JobRecord>();
  /**
   * Records whose shown write the store did not acknowledge in time (it
   * retries them). A networked store drops such a retry once the record
   * moved on (kv-view.ts: superseded), so the first change of the record
   * that is not this write ends the showing (changed()); else a record
   * another hub carried on (a queued job it ran to success) read as this
   * hub's older write for good, and was sent to its agent again.
   */
  private readonly retried = new Set<string>();
  private readonly writer: FencedWriter<JobRecord>;

  constructor(private readonly d: JobWritesDeps) {
    this.writer = new FencedWriter({ records: d.records, log: d.log, isFinal: (r) => FINAL_STATES.has(r.state) });
  }

  /** This hub's write of ID the store does not show yet, if any. */
  shown(id: string): JobRecord | undefined {
    return this.overlay.get(id);
  }

  /** Every record as readers see it: the store's, this hub's pending writes over them. */
  all(): JobRecord[] {
    if (this.overlay.size === 0) return [...this.d.records.values()];
    const out: JobRecord[] = [];
    for (const r of this.d.records.values()) if (!this.overlay.has(r.id)) out.push(r);
    return out.concat([...this.overlay.values()]);
  }

  /** Has this hub a write of ID the store has not acknowledged? */
  unconfirmedHas(id: string): boolean {
    return this.unconfirmed.has(id);
  }

  /** Stop showing and tracking ID (JobStore.discard); returns this hub's unacknowledged write of it, if any. */
  drop(id: string): JobRecord | undefined {
    const mine = this.unconfirmed.get(id);
    this.overlay.delete(id);
    this.unconfirmed.delete(id);
    this.retried.delete(id);
    return mine;
  }

  /** Resolves once every write made so far has settled: held eventual writes are sent now (JobStore.settled, close). */
  async settled(): Promise<void> {
    for (const w of this.waiting.values()) w.send?.();
    await Promise.all([...this.chains.values()]);
  }

  /** Stamp REC for its host (the fence), show it at once, and write it after the record's previous write. */
  put(rec: JobRecord, o: PutOptions = {}): Promise<void> {
    let stamped: JobRecord;
    try {
      const st = this.d.fence?.stamp(rec.host) ?? null;
      stamped = st ? { ...rec, hub: st.hub, epoch: st.epoch } : rec;
    } catch (err) {
      return Promise.reject(err);
    }
    this.unconfirmed.set(rec.id, stamped);
    this.retried.delete(rec.id);
    const done = this.chain(stamped, o.eventually === true, o.overOpenOnly === true);
    // A store that shows a write at once (the file journal, memory: its watch
    // already indexed it) needs no overlay; only one that shows it later does.
    // Set after the write was issued, but before anything else runs.
    if (this.d.records.get(rec.id) !== stamped) {
      this.overlay.set(rec.id, stamped);
      this.d.open.index(stamped);
    }
    return done;
  }

  /** A change in the store, this hub's or another's. */
  changed(c: StoreChange<JobRecord>): void {
    const mine = this.overlay.get(c.key);
    if (c.op === 'delete') {
      this.writer.forget(c.key);
      if (!mine) this.d.open.unindex(c.key);
      return;
    }
    // This hub's write landed (a store that shows writes at once hands back the same object).
    if (mine && sameRecord(mine, c.value)) {
      this.overlay.delete(c.key);
      this.retried.delete(c.key);
    } else if (mine && this.retried.has(c.key)) {
      // The record moved on while the store retried this hub's write: that retry is dropped, the store's record is the truth.
      this.d.log.warn({ job: c.key, shown: mine.state, stored: c.value.state, hub: c.value.hub }, 'a job record this hub could not write in time changed meanwhile; its write is dropped');
      this.overlay.delete(c.key);
      this.retried.delete(c.key);
      if (this.unconfirmed.get(c.key) === mine) this.unconfirmed.delete(c.key);
    }
    if (!this.overlay.has(c.key)) this.d.open.index(c.value);
  }

  /**
   * Run REC's write after the record's previous one (its revision is the one
   * to compare with). A write still waiting for its turn is replaced by a
   * newer one of the same record instead of queueing behind it: the newer
   * record holds everything the waiting one said, and both saves resolve once
   * it is durable. A job that ends while its dispatch write is still in
   * flight (a fast job, a busy NATS) then costs two writes, not three.
   *
   * An eventual write is held for EVENTUAL_HOLD_MS first (why: there), and
   * a write that is not eventual replacing it ends the hold at once.
   *
   * An ordered store (the file journal, types.ts KeyedStore.ordered) takes
   * the revision at once and commits in order, so there the write goes out
   * at once: a job's dispatched, running and end records share group commits
   * (a fan-out waits one commit before its job.acks, not three in a row).
   */
  private chain(rec: JobRecord, eventually: boolean, overOpenOnly: boolean): Promise<void> {
    // RECORD(): the record the write took (a newer save may replace a waiting one), read when it settles.
    // Settled, it is no longer this hub's unconfirmed write (durable() shows the store's record again).
    const shown = (record: () => JobRecord, run: Promise<void>): Promise<void> => run.then(
      () => {
        const r = record();
        if (this.overlay.get(rec.id) === r) { this.overlay.delete(rec.id); this.retried.delete(rec.id); }
        if (this.unconfirmed.get(rec.id) === r) this.unconfirmed.delete(rec.id);
      },
      (err: unknown) => {
        // Not durable yet (the store retries it): keep showing it. Refused: it never was.
        const r = record();
        if (!(err instanceof BentoError && err.code === 'STATE_WRITE_FAILED')) {
          if (this.overlay.get(rec.id) === r) this.unshow(r);
          if (this.unconfirmed.get(rec.id) === r) this.unconfirmed.delete(rec.id);
        } else if (this.overlay.get(rec.id) === r) {
          this.retried.add(rec.id);
        }
        throw err;
      },
    );
    if (this.d.records.ordered) return shown(() => rec, this.writer.write(rec, { eventually, overOpenOnly }));
    const waiting = this.waiting.get(rec.id);
    if (waiting) {
      waiting.rec = rec;
      waiting.eventually = eventually;
      waiting.overOpenOnly = overOpenOnly;
      if (!eventually) waiting.send?.();
      return waiting.done;
    }
    const prev = this.chains.get(rec.id) ?? Promise.resolve();
    const w: Waiting = { rec, eventually, overOpenOnly, done: Promise.resolve() };
    this.waiting.set(rec.id, w);
    const held = eventually ? new Promise<void>((resolve) => {
      const until = Date.now() + EVENTUAL_HOLD_MAX_MS;
      let timer: NodeJS.Timeout;
      const expire = (): void => {
        if (this.d.records.busy === true && Date.now() < until) timer = setTimeout(expire, EVENTUAL_HOLD_MS);
        else resolve();
      };
      timer = setTimeout(expire, EVENTUAL_HOLD_MS);
      w.send = () => { clearTimeout(timer); resolve(); };
    }) : undefined;
    const run = (held ? Promise.all([prev, held]) : prev).then(() => {
      this.waiting.delete(rec.id);
      return this.writer.write(w.rec, { eventually: w.eventually, overOpenOnly: w.overOpenOnly });
    });
    const tail = run.catch(() => undefined);
    this.chains.set(rec.id, tail);
    void tail.then(() => { if (this.chains.get(rec.id) === tail) this.chains.delete(rec.id); });
    w.done = shown(() => w.rec, run);
    return w.done;
  }

  /** Stop showing this hub's unwritten REC; the store's record (if any) shows again. */
  private unshow(rec: JobRecord): void {
    this.overlay.delete(rec.id);
    const cur = this.d.records.get(rec.id);
    if (cur) this.d.open.index(cur);
    else this.d.open.unindex(rec.id);
  }
}
