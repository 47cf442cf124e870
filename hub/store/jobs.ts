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
// guard without weakening that: fenced-write.ts.
import type { Action, Outcome } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import { isJobId } from '../../common/protocol/names.js';
import { BentoError } from '../../common/protocol/errors.js';
import { FencedWriter } from './fenced-write.js';
import type { JobOutputStore, KeyedStore, OutputLine, StateBackend, StoreChange } from './types.js';
import { OUTPUT_DEFAULTS, OutputCap, type JobOutputLine, type OutputCapStats, type OutputLimits, type OutputSummary } from './output-cap.js';

export type JobState = 'queued' | 'dispatched' | 'running' | Outcome;
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['success', 'failure', 'interrupted', 'rolled-back']);

export interface JobRecord {
  id: string;
  host: string;
  action: Action;
  state: JobState;
  requestedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  exitCode: number | null;
  durationMs: number | null;
  reason: string | null;
  /** trigger --prebuilt: the system store path the agent switches to instead of rebuilding (and the config hash it was built from). */
  storePath?: string;
  configHash?: string;
  /** Several hubs: the hub that wrote this record, and the epoch of its claim on the host (hub/holders). */
  hub?: string;
  epoch?: number;
  /**
   * What the host ran when the job was dispatched to it (or, for a job the
   * host started itself, when the hub heard of it): its hello, kept current
   * by every job.end. Absent in records written before hubs kept it.
   */
  systemBefore?: string | null;
  generationBefore?: number | null;
  /** What it ran after the job, from job.end (generation: agents that send it). Absent for the hub's own verdicts. */
  systemAfter?: string | null;
  generationAfter?: number | null;
  /** The host's own health check after a switch/test (agent setting healthCommand; job.end health), when it has one. */
  health?: 'passed' | 'failed';
  /** Its stored output: size, cuts (over limits.jobOutputBytes), dropped (the host's limits.hostOutputBytes); set when it ends. */
  output?: OutputSummary;
}

/** Who may write a host's job records (hub/holders/types.ts HostHolders.stamp). */
export interface JobFence {
  /** The stamp to write HOST's records with (null: none needed); throws when this hub must not write them. */
  stamp(host: string): { hub: string; epoch: number } | null;
}

/** The keyed store job records live in. */
export const JOBS_STORE = 'jobs';

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
  /** Finished job ids per host, oldest first: pruning is O(1) per job end, not a scan. */
  private readonly finished = new Map<string, string[]>();
  /** This hub's writes its store does not show yet (a compare-and-swap is visible once acknowledged): read before the store. */
  private readonly overlay = new Map<string, JobRecord>();
  /** Per record, the write in progress: the next one compares against the revision it produced. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Per record, the write waiting for the one in progress (chain()). */
  private readonly waiting = new Map<string, { rec: JobRecord; eventually: boolean; done: Promise<void> }>();
  /** Jobs not finished yet, per host, whoever wrote them (the takeover of a host settles them). */
  private readonly open = new Map<string, Set<string>>();
  /** Job id -> host, for the ids in `open` (a deletion names only the key). */
  private readonly openHost = new Map<string, string>();
  /** Per record, this hub's newest write while the store has not acknowledged it (in flight, or failed and retried). */
  private readonly unconfirmed = new Map<string, JobRecord>();
  private readonly writer: FencedWriter<JobRecord>;
  private readonly unwatch: () => void;
  private readonly cap: OutputCap;
  private readonly limits: OutputLimits;

  constructor(private readonly o: JobStoreOptions) {
    this.writer = new FencedWriter({ records: o.records, log: o.log });
    this.limits = o.limits ?? OUTPUT_DEFAULTS;
    this.cap = new OutputCap(o.output, this.limits);
    this.unwatch = o.records.watch((c) => this.changed(c));
  }

  /** Open the job records and output of a backend and build the per-host index. */
  static async open(backend: StateBackend, o: { history: number; limits?: OutputLimits; log: Logger; fence?: JobFence }): Promise<JobStore> {
    const records = await backend.openKeyed<JobRecord>(JOBS_STORE, { accept: isJobRecord });
    const store = new JobStore({ records, output: await backend.openOutput(), ...o });
    await store.load();
    return store;
  }

  /** Build the per-host index (prunes now if the history was lowered since the last run); returns the records by request time. */
  async load(): Promise<JobRecord[]> {
    const byTime = this.all().sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
    for (const rec of byTime) this.index(rec);
    await Promise.all(byTime.filter((rec) => FINAL_STATES.has(rec.state)).map((rec) => this.noteFinished(rec)));
    return byTime;
  }

  get(id: string): JobRecord | undefined {
    return this.overlay.get(id) ?? this.o.records.get(id);
  }

  /**
   * ID's record as durably stored: undefined while this hub has a write of it
   * in flight or not acknowledged (what get() shows then may never land).
   * What a result is acknowledged on (the agent deletes its copy on the ack).
   */
  durable(id: string): JobRecord | undefined {
    // Not the overlay: a store that shows writes at once (files, memory) ends it before they are durable.
    if (this.unconfirmed.has(id)) return undefined;
    return this.o.records.get(id);
  }

  all(): JobRecord[] {
    if (this.overlay.size === 0) return [...this.o.records.values()];
    const out: JobRecord[] = [];
    for (const r of this.o.records.values()) if (!this.overlay.has(r.id)) out.push(r);
    return out.concat([...this.overlay.values()]);
  }

  /** HOST's jobs that have not finished (queued, dispatched, running), whichever hub wrote them. */
  openFor(host: string): JobRecord[] {
    const ids = this.open.get(host);
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
    return [...this.open.keys()];
  }

  /** Every record written, by this hub or another, once the store shows it (in order per record); returns the unsubscribe function. */
  watch(fn: (rec: JobRecord) => void): () => void {
    return this.o.records.watch((c) => { if (c.op === 'set') fn(c.value); });
  }

  /** Throws when this hub must not write HOST's records now (another hub holds it, or the cluster cannot tell). */
  assertWritable(host: string): void {
    this.o.fence?.stamp(host);
  }

  forHost(host: string): JobRecord[] {
    return this.all().filter((j) => j.host === host).sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }

  /**
   * Record a new or changed job. Readers see it at once; the promise resolves
   * once it is durable (file backend: group commit, many saves share one fdatasync).
   * `eventually`: nobody waits for it soon, so it may join a later commit
   * (types.ts WriteOptions.eventually).
   */
  save(rec: JobRecord, opts: { eventually?: boolean } = {}): Promise<void> {
    const prev = this.get(rec.id);
    const ending = FINAL_STATES.has(rec.state) && !(prev && FINAL_STATES.has(prev.state));
    // What the output store holds is ours to say: a caller's copy of the record may predate it.
    const output = (ending ? this.cap.finish(rec.id) : undefined) ?? prev?.output;
    if (output) rec = { ...rec, output };
    const durable = this.put(rec, opts.eventually === true);
    if (ending) {
      this.o.output.end(rec.id).catch((err: Error) => this.o.log.warn({ jobId: rec.id, err: err.message }, 'cannot close the job output'));
      return Promise.all([durable, this.noteFinished(rec)]).then(() => undefined);
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
    const mine = this.unconfirmed.get(id);
    this.cap.forget(id);
    this.overlay.delete(id);
    this.unconfirmed.delete(id);
    this.unindex(id);
    const cur = this.o.records.entry(id);
    if (cur && mine && JSON.stringify(cur.value) === JSON.stringify(mine)) {
      this.o.records.delete(id, { expectRevision: cur.revision }).catch(() => undefined);
    } else if (cur) {
      this.index(cur.value);
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
  appendOutput(id: string, stream: OutputLine['stream'], data: string): { seq: number; ts: number } {
    return this.cap.append(id, this.get(id)?.output, stream, data);
  }

  /** A job's output after a seq: stored lines, a cut's marker flagged (`trimmed`), and a running job's tail. */
  readOutput(id: string, opts: { afterSeq?: number; limitBytes?: number } = {}): Promise<JobOutputLine[]> {
    return this.cap.read(id, this.get(id)?.output, opts);
  }

  /** What the output caps did (metrics). */
  get outputStats(): OutputCapStats {
    return this.cap.stats;
  }

  /** Resolves once every save made so far is durable. */
  settled(): Promise<void> {
    return this.o.records.settled();
  }

  async close(): Promise<void> {
    this.unwatch();
    // Running jobs' tails go to the store now, and their records say where the output stands (the job may go on after a restart).
    const flushed: Array<Promise<unknown>> = [];
    for (const id of this.cap.openJobs()) {
      const rec = this.get(id);
      const output = this.cap.finish(id);
      if (rec && output) flushed.push(this.put({ ...rec, output }).catch(() => undefined));
    }
    await Promise.all(flushed);
    await this.o.output.close();
    await this.o.records.close();
  }

  // --- fenced writes ---

  /** Stamp REC for its host (the fence), show it at once, and write it after the record's previous write. */
  private put(rec: JobRecord, eventually = false): Promise<void> {
    let stamped: JobRecord;
    try {
      const st = this.o.fence?.stamp(rec.host) ?? null;
      stamped = st ? { ...rec, hub: st.hub, epoch: st.epoch } : rec;
    } catch (err) {
      return Promise.reject(err);
    }
    this.overlay.set(rec.id, stamped);
    this.unconfirmed.set(rec.id, stamped);
    this.index(stamped);
    return this.chain(stamped, eventually);
  }

  /**
   * Run REC's write after the record's previous one (its revision is the one
   * to compare with). A write still waiting for its turn is replaced by a
   * newer one of the same record instead of queueing behind it: the newer
   * record holds everything the waiting one said, and both saves resolve once
   * it is durable. A job that ends while its dispatch write is still in
   * flight (a fast job, a busy NATS) then costs two writes, not three.
   *
   * An ordered store (the file journal, types.ts KeyedStore.ordered) takes
   * the revision at once and commits in order, so there the write goes out
   * at once: a job's dispatched, running and end records share group commits
   * (a fan-out waits one commit before its job.acks, not three in a row).
   */
  private chain(rec: JobRecord, eventually: boolean): Promise<void> {
    // RECORD(): the record the write took (a newer save may replace a waiting one), read when it settles.
    // Settled, it is no longer this hub's unconfirmed write (durable() shows the store's record again).
    const shown = (record: () => JobRecord, run: Promise<void>): Promise<void> => run.then(
      () => {
        const r = record();
        if (this.overlay.get(rec.id) === r) this.overlay.delete(rec.id);
        if (this.unconfirmed.get(rec.id) === r) this.unconfirmed.delete(rec.id);
      },
      (err: unknown) => {
        // Not durable yet (the store retries it): keep showing it. Refused: it never was.
        const r = record();
        if (!(err instanceof BentoError && err.code === 'STATE_WRITE_FAILED')) {
          if (this.overlay.get(rec.id) === r) this.unshow(r);
          if (this.unconfirmed.get(rec.id) === r) this.unconfirmed.delete(rec.id);
        }
        throw err;
      },
    );
    if (this.o.records.ordered) return shown(() => rec, this.writer.write(rec, eventually));
    const waiting = this.waiting.get(rec.id);
    if (waiting) {
      waiting.rec = rec;
      waiting.eventually = eventually;
      return waiting.done;
    }
    const prev = this.chains.get(rec.id) ?? Promise.resolve();
    const w: { rec: JobRecord; eventually: boolean; done: Promise<void> } = { rec, eventually, done: Promise.resolve() };
    this.waiting.set(rec.id, w);
    const run = prev.then(() => {
      this.waiting.delete(rec.id);
      return this.writer.write(w.rec, w.eventually);
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
    const cur = this.o.records.get(rec.id);
    if (cur) this.index(cur);
    else this.unindex(rec.id);
  }

  private index(rec: JobRecord): void {
    if (FINAL_STATES.has(rec.state)) {
      this.unindex(rec.id);
      return;
    }
    let ids = this.open.get(rec.host);
    if (!ids) this.open.set(rec.host, (ids = new Set()));
    ids.add(rec.id);
    this.openHost.set(rec.id, rec.host);
  }

  private unindex(id: string): void {
    const host = this.openHost.get(id);
    if (host === undefined) return;
    this.openHost.delete(id);
    const ids = this.open.get(host);
    ids?.delete(id);
    if (ids?.size === 0) this.open.delete(host);
  }

  /** A change in the store, this hub's or another's. */
  private changed(c: StoreChange<JobRecord>): void {
    const mine = this.overlay.get(c.key);
    if (c.op === 'delete') {
      this.writer.forget(c.key);
      if (!mine) this.unindex(c.key);
      return;
    }
    // This hub's write landed (a store that shows writes at once hands back the same object).
    if (mine && (mine === c.value || JSON.stringify(mine) === JSON.stringify(c.value))) this.overlay.delete(c.key);
    if (!this.overlay.has(c.key)) this.index(c.value);
  }

  /** Keep the newest `history` finished jobs per host; drop the oldest beyond that. */
  private async noteFinished(rec: JobRecord): Promise<void> {
    let ids = this.finished.get(rec.host);
    if (!ids) this.finished.set(rec.host, (ids = []));
    if (ids.includes(rec.id)) return; // finished again (a late verdict after "interrupted"): same slot
    ids.push(rec.id);
    const drop = ids.length > this.o.history ? ids.splice(0, ids.length - this.o.history) : [];
    const work: Array<Promise<unknown>> = [];
    for (const id of drop) {
      if (this.o.records.get(id)?.host !== rec.host) continue;
      // Eventually: a pruned record that a crash brings back is pruned again at the next start.
      work.push(this.o.records.delete(id, { eventually: true }), this.o.output.remove(id).catch(() => undefined));
    }
    work.push(...this.keepHostTotal(rec.host, ids));
    await Promise.all(work);
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
    for (let i = 0; i < ids.length - 1 && total > this.limits.hostOutputBytes; i++) {
      const id = ids[i]!;
      const rec = this.get(id);
      const bytes = this.storedBytes(id);
      if (!rec || rec.host !== host || bytes === 0) continue;
      total -= bytes;
      this.cap.stats.droppedJobs++;
      this.cap.stats.droppedBytes += bytes;
      this.o.log.info({ host, jobId: id, bytes }, 'dropped the stored output of an old job: the host\'s jobs are over limits.hostOutputBytes');
      work.push(
        this.o.output.remove(id).catch(() => undefined),
        this.put({ ...rec, output: { ...rec.output!, dropped: true } }).catch(() => undefined),
      );
    }
    return work;
  }

  private storedBytes(id: string): number {
    const o = this.get(id)?.output;
    return o && !o.dropped ? o.bytes : 0;
  }
}

export function isJobRecord(key: string, v: unknown): v is JobRecord {
  const r = v as Partial<JobRecord> | null;
  return typeof r === 'object' && r !== null && r.id === key && isJobId(key)
    && typeof r.host === 'string' && typeof r.state === 'string' && typeof r.requestedAt === 'string';
}

/** The job records of a backend, read without a hub (tests, offline tools): give it a read-only backend. */
export async function readJobRecords(backend: StateBackend): Promise<JobRecord[]> {
  const s = await backend.openKeyed<JobRecord>(JOBS_STORE, { accept: isJobRecord });
  try {
    return [...s.values()];
  } finally {
    await s.close();
  }
}
