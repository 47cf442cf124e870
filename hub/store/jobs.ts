// Durable job history over the state seam (types.ts): job records in the
// keyed store "jobs", output in the JobOutputStore. Backend-agnostic: the
// embedded hub gives it files (file-backend.ts), unit tests memory, a
// cluster NATS JetStream. Output lines are best effort; the job record,
// which is what "acknowledged" means, resolves only once durable. Output is
// capped here, above the backend (output-cap.ts): per job (head and tail kept,
// the middle cut) and per host (the oldest finished jobs' output dropped).
//
// Fencing (several hubs, docs/cluster.md): every write of a record is a
// compare-and-swap on the revision this hub last saw of it, and carries the
// writer's stamp (hub, epoch of its claim on the host) from the fence. A hub
// that took a host over re-stamps the host's open records first, so a hub
// that lost the host (frozen, then resumed) finds every record it could
// still write changed under a newer epoch: its write fails instead of
// landing. One hub has no fence and never sees a conflict (it is the only
// writer), so the same code runs there unchanged. The write itself, and why a
// hub's later writes under its own claim may skip NATS 2.9.10's per-bucket
// guard without weakening that: fenced-write.ts; this hub's writes in flight:
// job-writes.ts; finished jobs and their pruning: job-history.ts.
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { JobOutputStore, KeyedStore, OutputLine, OutputReadOptions, StateBackend } from './types.js';
import { OUTPUT_DEFAULTS, OutputCap, type JobOutputLine, type OutputCapStats, type OutputLimits } from './output-cap.js';
import { FINAL_STATES, JOBS_STORE, JOBS_STORE_OPTIONS, sameRecord, type JobFence, type JobRecord } from './job-record.js';
import { OpenJobs } from './open-jobs.js';
import { JobWrites } from './job-writes.js';
import { FinishedJobs } from './job-history.js';
import type { OutputSummary } from './output-cap.js';
import { LateDiscards } from './late-discards.js';

export { FINAL_STATES, JOBS_STORE, JOBS_STORE_OPTIONS, isJobRecord, readJobRecords, type JobFence, type JobRecord, type JobState } from './job-record.js';

export interface JobStoreOptions {
  records: KeyedStore<JobRecord>;
  output: JobOutputStore;
  /** Finished jobs kept per host. */
  history: number;
  /** Caps on stored output (hub.json limits); default OUTPUT_DEFAULTS. */
  limits?: OutputLimits;
  log: Logger;
  /** Several hubs: who may write which host's records. None: one hub, every write allowed. */
  fence?: JobFence;
}

export class JobStore {
  private readonly open = new OpenJobs();
  private readonly writes: JobWrites;
  private readonly finished: FinishedJobs;
  private readonly unwatch: () => void;
  private readonly cap: OutputCap;

  /**
   * A job's output summary from its first final save, until a final save of
   * it is durable: the output cap hands it out once, and a final write that
   * was refused (the fence) and made again lost it (found by review: the
   * record had no line and byte counts, and reads of cut output mapped seqs
   * wrongly).
   */
  private readonly endings = new Map<string, OutputSummary>();
  /** Records given up that may still land (late-discards.ts). */
  private readonly late: LateDiscards;

  constructor(private readonly o: JobStoreOptions) {
    const limits = o.limits ?? OUTPUT_DEFAULTS;
    this.cap = new OutputCap(o.output, limits);
    this.writes = new JobWrites({ records: o.records, log: o.log, fence: o.fence, open: this.open });
    this.finished = new FinishedJobs({
      records: o.records, output: o.output, history: o.history, hostOutputBytes: limits.hostOutputBytes,
      stats: this.cap.stats, log: o.log, get: (id) => this.get(id), rewrite: (rec) => this.writes.put(rec),
    });
    this.late = new LateDiscards({ records: o.records, log: o.log });
    this.unwatch = o.records.watch((c) => { this.writes.changed(c); this.late.changed(c); });
  }

  /** Open the job records and output of a backend and build the per-host index. */
  static async open(backend: StateBackend, o: { history: number; limits?: OutputLimits; log: Logger; fence?: JobFence }): Promise<JobStore> {
    const records = await backend.openKeyed<JobRecord>(JOBS_STORE, JOBS_STORE_OPTIONS);
    const store = new JobStore({ records, output: await backend.openOutput(), ...o });
    await store.load();
    return store;
  }

  /** Build the per-host index (prunes now if the history was lowered since the last run); returns the records by request time. */
  async load(): Promise<JobRecord[]> {
    const byTime = this.all().sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
    for (const rec of byTime) this.open.index(rec);
    await Promise.all(byTime.filter((rec) => FINAL_STATES.has(rec.state)).map((rec) => this.finished.note(rec)));
    return byTime;
  }

  get(id: string): JobRecord | undefined {
    return this.writes.shown(id) ?? this.o.records.get(id);
  }

  /**
   * ID's record as durably stored: undefined while this hub has a write of it
   * in flight or not acknowledged (what get() shows then may never land).
   * What a result is acknowledged on (the agent deletes its copy on the ack).
   */
  durable(id: string): JobRecord | undefined {
    // Not the overlay: a store that shows writes at once (files, memory) ends it before they are durable.
    if (this.writes.unconfirmedHas(id)) return undefined;
    return this.o.records.get(id);
  }

  /**
   * durable(), read at the store itself instead of this hub's view (a
   * cluster: the stream leader; types.ts KeyedStore.latest): a record
   * another hub wrote that the view has not caught up with yet. One round
   * trip on a cluster; rejects when the store does not answer.
   */
  async durableLatest(id: string): Promise<JobRecord | undefined> {
    if (this.writes.unconfirmedHas(id)) return undefined;
    const rec = (await this.o.records.latest(id))?.value;
    // A write of it this hub began meanwhile: what the store says may be about to change under it.
    return this.writes.unconfirmedHas(id) ? undefined : rec;
  }

  all(): JobRecord[] {
    return this.writes.all();
  }

  /** The highest claim epoch stamped on HOST's open jobs (0: none): a new claim goes above it (cluster/holds.ts claim). */
  openEpoch(host: string): number {
    return this.openFor(host).reduce((m, r) => Math.max(m, r.epoch ?? 0), 0);
  }

  /** HOST's jobs that have not finished (queued, dispatched, running), whichever hub wrote them. */
  openFor(host: string): JobRecord[] {
    const ids = this.open.ids(host);
    if (!ids) return [];
    const out: JobRecord[] = [];
    for (const id of ids) {
      const r = this.get(id);
      if (r && r.host === host && !FINAL_STATES.has(r.state)) out.push(r);
    }
    return out.sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }

  /** Hosts that have jobs not finished yet. */
  hostsWithOpenJobs(): string[] {
    return this.open.hosts();
  }

  /** Every record written, by this hub or another, once the store shows it (in order per record); returns the unsubscribe function. */
  watch(fn: (rec: JobRecord) => void): () => void {
    return this.o.records.watch((c) => { if (c.op === 'set') fn(c.value); });
  }

  /** Throws when this hub must not write HOST's records now (another hub holds it, or the cluster cannot tell). */
  assertWritable(host: string): void {
    this.o.fence?.stamp(host);
  }

  /**
   * assertWritable, and REC carries no newer claim than this hub's, so a
   * write over it will not be refused (fenced-write.ts). Checked before a job
   * is sent: one sent while its record refuses the write stays queued in
   * every view, and a later dispatch sent it again (the soak).
   */
  assertWritableOver(rec: JobRecord): void {
    const st = this.o.fence?.stamp(rec.host);
    if (st && newerClaim(rec, st)) {
      throw new BentoError('STATE_CONFLICT', `job ${rec.id}: its record carries a newer claim on ${rec.host} (hub ${rec.hub ?? '?'}, epoch ${rec.epoch} > ${st.epoch})`);
    }
  }

  /** assertWritableOver refuses REC only for its newer claim: this hub may write the host's records, under an older epoch. */
  claimBehind(rec: JobRecord): boolean {
    try {
      const st = this.o.fence?.stamp(rec.host);
      return !!st && newerClaim(rec, st);
    } catch {
      return false;
    }
  }

  forHost(host: string): JobRecord[] {
    return this.all().filter((j) => j.host === host).sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }

  /**
   * Record a new or changed job. Readers see it at once; the promise resolves
   * once it is durable (file backend: group commit, many saves share one fdatasync).
   * `eventually`: nobody waits for it soon, so it may join a later commit
   * (types.ts WriteOptions.eventually). `overOpenOnly`: the hub's verdict on
   * a job it saw open, not written if the record is final by the time it is
   * written (another hub, or a result, ended it first: fenced-write.ts); it
   * resolves all the same, since the job has ended.
   */
  save(rec: JobRecord, opts: { eventually?: boolean; overOpenOnly?: boolean } = {}): Promise<void> {
    const prev = this.get(rec.id);
    const ending = FINAL_STATES.has(rec.state) && !(prev && FINAL_STATES.has(prev.state));
    // What the output store holds is ours to say: a caller's copy of the record may predate it.
    // The output cap answers once; a final write that was refused is made again with the same summary.
    const summary = ending ? (this.cap.finish(rec.id) ?? this.endings.get(rec.id)) : undefined;
    const output = summary ?? prev?.output;
    if (output) rec = { ...rec, output };
    const durable = this.writes.put(rec, opts);
    if (summary) {
      this.endings.set(rec.id, summary);
      durable.then(() => { this.endings.delete(rec.id); }, () => undefined);
    }
    if (ending) {
      this.o.output.end(rec.id).catch((err: Error) => this.o.log.warn({ jobId: rec.id, err: err.message }, 'cannot close the job output'));
      const pruning = this.finished.note(rec);
      return pruning ? Promise.all([durable, pruning]).then(() => undefined) : durable;
    }
    return durable;
  }

  /**
   * Forget a record whose first write failed (nobody was told it exists).
   * Only this hub's own write is removed, if it landed after all: a queued
   * job's id is shared by every hub (derived from its host), so the record
   * under it may be another hub's, which that hub dispatched meanwhile.
   * Deleting it unconditionally lost such jobs (the soak: "ran but recorded
   * otherwise", the record a deletion marker).
   */
  discard(id: string): void {
    this.endings.delete(id);
    this.o.records.abandon?.(id);
    const mine = this.writes.drop(id);
    this.cap.forget(id);
    this.open.unindex(id);
    const cur = this.o.records.entry(id);
    if (cur && mine && sameRecord(cur.value, mine)) {
      this.o.records.delete(id, { expectRevision: cur.revision }).catch(() => undefined);
    } else if (cur) {
      this.open.index(cur.value);
    } else if (mine && this.o.records.abandon) {
      this.late.add(mine); // an attempt of it may still be on the wire
    }
  }

  /** Before appending output to a job another hub started (its host moved here mid-job). */
  resumeOutput(id: string): Promise<void> {
    return this.o.output.resume(id);
  }

  /**
   * One output line of a running job; returns its seq (1, 2, 3, ... per job;
   * past a cut, numbered past the gap) and when it was stored (or held).
   */
  appendOutput(id: string, stream: OutputLine['stream'], data: string): { seq: number; ts: number; w?: string } {
    return this.cap.append(id, this.get(id)?.output, stream, data);
  }

  /** A job's output after a seq: stored lines, a cut's marker flagged (`trimmed`), and a running job's tail. */
  readOutput(id: string, opts: OutputReadOptions = {}): Promise<JobOutputLine[]> {
    return this.cap.read(id, this.get(id)?.output, opts);
  }

  /** What the output caps did (metrics). */
  get outputStats(): OutputCapStats {
    return this.cap.stats;
  }

  /** Resolves once every save made so far is durable. */
  async settled(): Promise<void> {
    await this.writes.settled();
    await this.o.records.settled();
  }

  async close(): Promise<void> {
    this.unwatch();
    this.late.close();
    // Running jobs' tails go to the store now, and their records say where the output stands (the job may go on after a restart).
    const flushed: Array<Promise<unknown>> = [];
    for (const id of this.cap.openJobs()) {
      const rec = this.get(id);
      const output = this.cap.finish(id);
      if (rec && output) flushed.push(this.writes.put({ ...rec, output }).catch(() => undefined));
    }
    await Promise.all(flushed);
    await this.writes.settled(); // held eventual writes go out now, not after the store closed
    await this.o.output.close();
    await this.o.records.close();
  }
}

/** REC was written under a newer claim on its host than STAMP's. */
function newerClaim(rec: JobRecord, stamp: { epoch: number }): boolean {
  return rec.epoch !== undefined && rec.epoch > stamp.epoch;
}
