// Job output on a JetStream stream: one subject per job, one message per
// batch of lines (output-batch.ts).
//
// A line's seq is its place among the job's stored lines, in the order the
// stream stored them: so the stored output is 1..N with no gap and no repeat
// by construction, whoever wrote it, even when a job's host moved to another
// hub mid-job and both hubs wrote for a moment. append() returns the seq the
// line will have, which is right when this hub is the job's only writer and
// knows where the output stands:
//   - a hub that starts a job appends from 1;
//   - a hub the job moved to calls resume() first, which counts the stored
//     lines;
//   - a writer that did neither (append() for a job it does not know) sends
//     its first batch as "create" (expected last subject sequence 0, which
//     the server checks exactly on every version, unlike a non-zero one: see
//     kv-cas.ts). If the job already has output, that fails; the writer counts
//     the stored lines and renumbers the lines it has not stored (logged: the
//     seqs append() returned for them were too low).
// Two hubs writing one job at the same time (the old one still flushing) get
// their lines interleaved batch by batch, each in its own order, each once;
// only the seqs append() returned can be off: both hubs may have published
// different lines under one seq. So each writer tags its lines (w, on the bus
// and in its batches) and followers compare seqs per writer (admin/follow-fill.ts).
//
// Best effort, in order (hub/store/types.ts): append() never waits; lines
// wait in memory (at most MAX_BUFFERED bytes for all jobs) while NATS does
// not acknowledge, and are retried every few seconds. Retries carry the
// batch's message id, so a batch whose ack was lost is not stored twice.
import { nuid, type NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, MsgRequest } from '@nats-io/jetstream';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { JobOutputStore, OutputLine, OutputReadOptions } from '../store/types.js';
import { decodeBatch, encodeBatch, lineCost, takeBatch, unstoredLines, withinBytes, writerTag, type Batch } from './output-batch.js';
import { publishDurable, untilAnswered } from './publish.js';
import type { SlotGate } from './slot-gate.js';

export interface OutputDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  subject: (jobId: string) => string;
  log: Logger;
  requestTimeoutMs: number;
  writeTimeoutMs: number;
  /** This hub's bulk-write gate (slot-gate.ts). */
  gate?: SlotGate;
}

/**
 * What lines waiting for NATS may hold in all jobs together: their text plus
 * LINE_COST each for the line's object (a review found only the text
 * counted: tiny lines could hold 80-100 MB, not the 16 MiB this suggests),
 * and at most MAX_LINES of them (a dropped line's empty place costs its
 * object too).
 */
const MAX_BUFFERED = 16 * 1024 * 1024;
const MAX_LINES = 100_000;
/** Heap bytes of one waiting line besides its text: the {seq, stream, data, ts} object and its slot. */
const LINE_COST = 96;
const RETRY_MS = 2000;

interface Writer {
  readonly jobId: string;
  readonly subject: string;
  /** Tag of this writer's numbering (renumber() starts a new one). */
  tag: string;
  /** Seq the next append gets. */
  next: number;
  /** Started by append() alone: its first batch must be the job's first, or it renumbers. */
  unsure: boolean;
  /** Lines with their tag (w) and the seq they were published with (ws). */
  queue: OutputLine[];
  /** The batch being published (not stored yet, not in the queue). */
  sending: OutputLine[];
  flushing: Promise<void> | null;
  retry: NodeJS.Timeout | null;
  dropped: number;
}

export class NatsJobOutputStore implements JobOutputStore {
  private readonly writers = new Map<string, Writer>();
  private readonly idBase = nuid.next();
  private batches = 0;
  private buffered = 0;
  private lines = 0;
  private closed = false;

  constructor(private readonly d: OutputDeps) {}

  private get maxBatch(): number {
    return (this.d.nc.info?.max_payload ?? 1024 * 1024) - 2048;
  }

  append(jobId: string, stream: OutputLine['stream'], data: string, at?: number): { seq: number; ts: number; w: string } {
    const w = this.writers.get(jobId) ?? this.writer(jobId, 1, true);
    const seq = w.next++;
    const ts = at ?? Date.now();
    const tag = w.tag;
    if (lineCost(data) + 64 > this.maxBatch) data = `${data.slice(0, this.maxBatch >> 3)} [bento: line truncated, ${data.length} characters]`;
    let size = Buffer.byteLength(data, 'utf8');
    if (this.closed || this.buffered + size + LINE_COST > MAX_BUFFERED) {
      // Its text is dropped, its place kept (an empty line), so the seqs
      // append() returns still match the stored ones. Past MAX_LINES even
      // the places go, and the seqs drift (logged).
      if (w.dropped++ === 0) this.d.log.error({ jobId, seq }, 'job output is not reaching NATS and the buffer is full; keeping only the places of new lines');
      if (this.closed || this.lines >= MAX_LINES) return { seq, ts, w: tag };
      data = '';
      size = 0;
    }
    this.buffered += size + LINE_COST;
    this.lines += 1;
    w.queue.push({ seq, stream, data, ts, w: tag, ws: seq });
    if (!w.flushing && !w.retry) setImmediate(() => this.kick(w)); // let the rest of this turn's lines join
    return { seq, ts, w: tag };
  }

  /** Before appending to a job another hub started: continue its seq where its stored output ends. */
  async resume(jobId: string): Promise<void> {
    if (this.writers.has(jobId)) return;
    const stored = await this.countStored(jobId);
    if (this.writers.has(jobId)) return; // an append came first: its first batch finds out
    this.writer(jobId, stored + 1, false);
  }

  writerTag(jobId: string): string | undefined {
    return this.writers.get(jobId)?.tag;
  }

  async read(jobId: string, opts: OutputReadOptions = {}): Promise<OutputLine[]> {
    const after = opts.afterSeq ?? 0;
    // Lines not stored yet, taken BEFORE reading the stored ones: a batch
    // stored meanwhile is then in the stored read, never in neither.
    const w = this.writers.get(jobId);
    const unstored = w ? [...w.sending, ...w.queue] : [];
    const out: OutputLine[] = [];
    let budget = opts.limitBytes ?? Infinity;
    let place = 0;
    let complete = true;
    // Per writer, the last seq it gave a stored line: which of this hub's lines are stored (identity reads).
    const storedUpTo = new Map<string, number>();
    for await (const b of this.storedBatches(jobId)) {
      const bw = b.w ?? '';
      storedUpTo.set(bw, Math.max(storedUpTo.get(bw) ?? 0, b.first + b.lines.length - 1));
      for (const [i, l] of b.lines.entries()) {
        place += 1;
        if (place <= after) continue;
        out.push(opts.identity ? { seq: place, ...l, w: bw, ws: b.first + i } : { seq: place, ...l });
        budget -= Buffer.byteLength(l.data, 'utf8');
      }
      if (budget <= 0) { complete = false; break; }
    }
    // Lines this hub has not stored yet (a running job) come after the stored ones.
    if (complete) for (const l of unstoredLines(unstored, { identity: opts.identity === true, after: Math.max(after, place), storedUpTo })) out.push(l);
    return withinBytes(out, opts.limitBytes);
  }

  async end(jobId: string): Promise<void> {
    const w = this.writers.get(jobId);
    if (!w) return;
    await this.drain(w);
    // Still unstored (NATS away): the retry timer keeps the writer until it is.
    if (w.queue.length === 0 && this.writers.get(jobId) === w) this.writers.delete(jobId);
  }

  async remove(jobId: string): Promise<void> {
    const w = this.writers.get(jobId);
    if (w) this.forget(w);
    await this.request(() => this.d.jsm.streams.purge(this.d.stream, { filter: this.d.subject(jobId) })).catch((err: unknown) => {
      throw new BentoError('STATE_WRITE_FAILED', `cannot remove the output of ${jobId}: ${(err as Error).message}`, { cause: err });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.writers.values()].map((w) => this.drain(w)));
    for (const w of this.writers.values()) {
      if (w.queue.length > 0) this.d.log.warn({ jobId: w.jobId, lines: w.queue.length }, 'closing with job output NATS never stored; it is lost');
      this.forget(w);
    }
  }

  private writer(jobId: string, next: number, unsure: boolean): Writer {
    const w: Writer = { jobId, subject: this.d.subject(jobId), tag: writerTag(), next, unsure, queue: [], sending: [], flushing: null, retry: null, dropped: 0 };
    this.writers.set(jobId, w);
    return w;
  }

  private forget(w: Writer): void {
    if (w.retry) clearTimeout(w.retry);
    w.retry = null;
    this.release(w.queue);
    w.queue = [];
    if (this.writers.get(w.jobId) === w) this.writers.delete(w.jobId);
  }

  /** Flush until the queue is empty or a write fails; waits for a flush in progress. */
  private async drain(w: Writer): Promise<void> {
    if (w.retry) { clearTimeout(w.retry); w.retry = null; }
    while (w.flushing) await w.flushing;
    if (w.queue.length > 0) { this.kick(w); await w.flushing; }
  }

  private kick(w: Writer): void {
    if (w.flushing || w.queue.length === 0 || this.writers.get(w.jobId) !== w) return;
    w.flushing = this.flush(w).then((ok) => {
      w.flushing = null;
      if (!ok && !this.closed && !w.retry && this.writers.get(w.jobId) === w) {
        w.retry = setTimeout(() => { w.retry = null; this.kick(w); }, RETRY_MS);
        w.retry.unref();
      } else if (ok && w.queue.length > 0) {
        this.kick(w);
      }
    });
  }

  /** Store the queue batch by batch, in order. False when NATS did not acknowledge (lines stay queued). */
  private async flush(w: Writer): Promise<boolean> {
    while (w.queue.length > 0) {
      const batch = takeBatch(w.queue, this.maxBatch);
      w.sending = batch;
      const msgID = `${this.idBase}.${++this.batches}`;
      try {
        await publishDurable(this.d.js, { subject: w.subject, data: encodeBatch(batch), msgID, ...(w.unsure ? { expectLastSubjectSeq: 0 } : {}) },
          { attemptTimeoutMs: this.d.requestTimeoutMs, totalMs: this.d.writeTimeoutMs, ...(this.d.gate ? { gate: this.d.gate } : {}) });
        w.unsure = false;
      } catch (err) {
        w.sending = [];
        if (this.writers.get(w.jobId) !== w) { // removed meanwhile
          this.release(batch);
          return true;
        }
        w.queue.unshift(...batch);
        if (err instanceof BentoError && err.code === 'STATE_CONFLICT' && w.unsure) {
          if (!(await this.renumber(w))) return false;
          continue;
        }
        this.d.log.warn({ jobId: w.jobId, err: (err as Error).message }, 'job output not stored yet; retrying');
        return false;
      }
      w.sending = [];
      this.release(batch);
    }
    return true;
  }

  private release(lines: OutputLine[]): void {
    for (const l of lines) this.buffered -= Buffer.byteLength(l.data, 'utf8') + LINE_COST;
    this.lines -= lines.length;
  }

  /**
   * The job already had output this writer did not know of: follow it. The
   * waiting lines keep the tag and seq they were published with (followers
   * saw them so); the lines appended from here jump ahead under a new tag,
   * so a follower sees a new writer, not a gap it would wait for.
   */
  private async renumber(w: Writer): Promise<boolean> {
    let stored: number;
    try { stored = await this.countStored(w.jobId); } catch { return false; }
    const was = w.queue[0]?.seq;
    w.queue = w.queue.map((l, i) => ({ ...l, seq: stored + 1 + i }));
    w.next = stored + 1 + w.queue.length;
    w.tag = writerTag();
    w.unsure = false;
    this.d.log.warn({ jobId: w.jobId, from: was, to: stored + 1, lines: w.queue.length }, 'this job already had output (it moved here without resume()); renumbered the lines not stored yet');
    return true;
  }

  private async countStored(jobId: string): Promise<number> {
    let n = 0;
    for await (const b of this.storedBatches(jobId)) n += b.lines.length;
    return n;
  }

  /** The job's stored batches in stream order, from the stream leader; messages that are not batches are skipped. */
  private async *storedBatches(jobId: string): AsyncGenerator<Batch> {
    const subject = this.d.subject(jobId);
    const last = await this.request(() => this.d.jsm.streams.getMessage(this.d.stream, { last_by_subj: subject }));
    for (let seq = 1; last && seq <= last.seq;) {
      // next_by_subj: the job's next message at or after seq (2.9 has it; the client's type lists only seq and last_by_subj).
      const m = await this.request(() => this.d.jsm.streams.getMessage(this.d.stream, { seq, next_by_subj: subject } as unknown as MsgRequest));
      if (!m) break;
      const b = decodeBatch(m.data);
      if (b) yield b;
      else this.d.log.warn({ jobId, streamSeq: m.seq }, 'skipping a stored output message that is not a batch of lines');
      seq = m.seq + 1;
    }
  }

  /** A read-side request, retried within the write deadline (a leader election answers nothing for ~5 s). */
  private request<R>(fn: () => Promise<R>): Promise<R> {
    return untilAnswered(fn, this.d.writeTimeoutMs).catch((err: unknown) => {
      throw err instanceof BentoError ? err : new BentoError('CLUSTER_UNAVAILABLE', `job output stream ${this.d.stream}: ${(err as Error).message}`, { cause: err });
    });
  }
}
