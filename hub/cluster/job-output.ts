// Job output on a JetStream stream: one subject per job, one message per
// batch of lines (output-batch.ts).
//
// No gap and no repeat in a job's seq, even when the job's host moves to
// another hub mid-job: every batch is published with "expected last subject
// sequence" = the previous batch of that job, so two writers of one job can
// never both append after the same line. A writer that did not start the job
// (the host moved here) learns where the output stands with resume() before
// its first append; one that skipped it, or that lost a race with the old
// hub's last batch, gets a conflict, reads the job's last stored line, and
// renumbers what it has not stored yet to follow it (logged: the seqs append()
// returned for those lines were wrong, the stored ones are right).
//
// Best effort, in order (hub/store/types.ts): append() never waits; lines
// wait in memory (at most MAX_BUFFERED bytes for all jobs) while NATS does
// not acknowledge, and are retried every few seconds.
import { nuid, type NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, MsgRequest } from '@nats-io/jetstream';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { JobOutputStore, OutputLine } from '../store/types.js';
import { decodeBatch, encodeBatch, lineCost, takeBatch, withinBytes } from './output-batch.js';
import { publishDurable, untilAnswered } from './publish.js';

export interface OutputDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  subject: (jobId: string) => string;
  log: Logger;
  requestTimeoutMs: number;
  writeTimeoutMs: number;
}

const MAX_BUFFERED = 16 * 1024 * 1024;
const RETRY_MS = 2000;
/** Renumbering rounds per batch before its lines are given up (another writer keeps winning). */
const MAX_CONFLICTS = 5;

interface Writer {
  readonly jobId: string;
  readonly subject: string;
  /** Seq the next append gets. */
  next: number;
  /** Stream sequence of the job's last stored batch (0: none): the next batch expects it. */
  last: number;
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
  private closed = false;

  constructor(private readonly d: OutputDeps) {}

  private get maxBatch(): number {
    return (this.d.nc.info?.max_payload ?? 1024 * 1024) - 2048;
  }

  append(jobId: string, stream: OutputLine['stream'], data: string): number {
    const w = this.writers.get(jobId) ?? this.writer(jobId, 1, 0);
    const seq = w.next++;
    if (lineCost(data) + 64 > this.maxBatch) data = `${data.slice(0, this.maxBatch >> 3)} [bento: line truncated, ${data.length} characters]`;
    const size = Buffer.byteLength(data, 'utf8');
    if (this.closed || this.buffered + size > MAX_BUFFERED) {
      // Dropped: its seq stays unused, so a reader sees the gap.
      if (w.dropped++ === 0) this.d.log.error({ jobId, seq }, 'job output is not reaching NATS and the buffer is full; dropping lines');
      return seq;
    }
    this.buffered += size;
    w.queue.push({ seq, stream, data });
    if (!w.flushing && !w.retry) setImmediate(() => this.kick(w)); // let the rest of this turn's lines join
    return seq;
  }

  /** Before appending to a job another hub started: continue its seq where its stored output ends. */
  async resume(jobId: string): Promise<void> {
    if (this.writers.has(jobId)) return;
    const last = await this.lastStored(jobId);
    if (this.writers.has(jobId)) return; // an append came first; the conflict path will renumber it
    this.writer(jobId, (last?.lastLine ?? 0) + 1, last?.streamSeq ?? 0);
  }

  async read(jobId: string, opts: { afterSeq?: number; limitBytes?: number } = {}): Promise<OutputLine[]> {
    const after = opts.afterSeq ?? 0;
    const subject = this.d.subject(jobId);
    const out: OutputLine[] = [];
    let storedUpTo = 0;
    const last = await this.request(() => this.d.jsm.streams.getMessage(this.d.stream, { last_by_subj: subject }));
    let budget = opts.limitBytes ?? Infinity;
    for (let seq = 1; last && seq <= last.seq && budget > 0;) {
      // next_by_subj: the job's next message at or after seq, from the stream leader
      // (2.9 has it; the client's type lists only seq and last_by_subj).
      const m = await this.request(() => this.d.jsm.streams.getMessage(this.d.stream, { seq, next_by_subj: subject } as unknown as MsgRequest));
      if (!m) break;
      const lines = decodeBatch(m.data);
      if (!lines) this.d.log.warn({ jobId, streamSeq: m.seq }, 'skipping a stored output message that is not a batch of lines');
      for (const l of lines ?? []) {
        storedUpTo = Math.max(storedUpTo, l.seq);
        if (l.seq <= after) continue;
        out.push(l);
        budget -= Buffer.byteLength(l.data, 'utf8');
      }
      seq = m.seq + 1;
    }
    // Lines this hub has not stored yet (a running job): after the stored ones.
    const w = this.writers.get(jobId);
    if (w) for (const l of [...w.sending, ...w.queue]) if (l.seq > Math.max(after, storedUpTo)) out.push(l);
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

  private writer(jobId: string, next: number, last: number): Writer {
    const w: Writer = { jobId, subject: this.d.subject(jobId), next, last, queue: [], sending: [], flushing: null, retry: null, dropped: 0 };
    this.writers.set(jobId, w);
    return w;
  }

  private forget(w: Writer): void {
    if (w.retry) clearTimeout(w.retry);
    w.retry = null;
    for (const l of w.queue) this.buffered -= Buffer.byteLength(l.data, 'utf8');
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
    let conflicts = 0;
    while (w.queue.length > 0) {
      const batch = takeBatch(w.queue, this.maxBatch);
      w.sending = batch;
      const msgID = `${this.idBase}.${++this.batches}`;
      try {
        const ack = await publishDurable(this.d.js, { subject: w.subject, data: encodeBatch(batch), msgID, expectLastSubjectSeq: w.last },
          { attemptTimeoutMs: this.d.requestTimeoutMs, totalMs: this.d.writeTimeoutMs });
        w.last = ack.seq;
        conflicts = 0;
      } catch (err) {
        if (this.writers.get(w.jobId) === w) w.queue.unshift(...batch);
        else for (const l of batch) this.buffered -= Buffer.byteLength(l.data, 'utf8'); // removed meanwhile
        w.sending = [];
        if (!(err instanceof BentoError) || err.code !== 'STATE_CONFLICT') {
          this.d.log.warn({ jobId: w.jobId, err: (err as Error).message }, 'job output not stored yet; retrying');
          return false;
        }
        if (++conflicts > MAX_CONFLICTS) {
          this.d.log.error({ jobId: w.jobId, lines: w.queue.length }, 'another writer keeps appending to this job\'s output; dropping ours');
          this.forget(w);
          return true;
        }
        if (!(await this.renumber(w))) return false;
        continue;
      }
      w.sending = [];
      for (const l of batch) this.buffered -= Buffer.byteLength(l.data, 'utf8');
    }
    return true;
  }

  /** Another writer stored output for this job: continue after its last line. */
  private async renumber(w: Writer): Promise<boolean> {
    let last: Awaited<ReturnType<NatsJobOutputStore['lastStored']>>;
    try { last = await this.lastStored(w.jobId); } catch { return false; }
    const from = (last?.lastLine ?? 0) + 1;
    const was = w.queue[0]?.seq;
    w.queue = w.queue.map((l, i) => ({ ...l, seq: from + i }));
    w.next = from + w.queue.length;
    w.last = last?.streamSeq ?? 0;
    this.d.log.warn({ jobId: w.jobId, from: was, to: from, lines: w.queue.length }, 'job output was continued by another writer; renumbered the lines not stored yet');
    return true;
  }

  /** The stream sequence and the last line's seq of the job's newest stored batch. */
  private async lastStored(jobId: string): Promise<{ streamSeq: number; lastLine: number } | null> {
    const m = await this.request(() => this.d.jsm.streams.getMessage(this.d.stream, { last_by_subj: this.d.subject(jobId) }));
    if (!m) return null;
    const lines = decodeBatch(m.data);
    return { streamSeq: m.seq, lastLine: lines?.[lines.length - 1]?.seq ?? 0 };
  }

  /** A read-side request, retried within the write deadline (a leader election answers nothing for ~5 s). */
  private request<R>(fn: () => Promise<R>): Promise<R> {
    return untilAnswered(fn, this.d.writeTimeoutMs);
  }
}
