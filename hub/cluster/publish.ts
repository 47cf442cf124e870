// One durable JetStream write: short attempts, retried until a deadline.
//
// Why attempts are short and carry a message id: when a server dies, the
// streams it led get a new leader after ~5 s, and meanwhile a request can
// vanish (sent to the dead leader) or wait in the client's buffer while it
// reconnects. Retrying every requestTimeoutMs catches the new leader early;
// the Nats-Msg-Id makes every retry of one write the same write, so a retry of
// a write that did land (only its ack was lost) is answered "duplicate" with
// the original sequence instead of landing twice, and a compare-and-swap
// retry is not mistaken for a conflict (the server checks the id first; seen
// on 2.9.10). The id is remembered for the stream's duplicate window (2 min).
import type { MsgHdrs } from '@nats-io/transport-node';
import { JetStreamApiError, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { BentoError } from '../../common/protocol/errors.js';
import type { SlotGate } from './slot-gate.js';

/** The server refused an expected-last-subject-sequence (10071; 10164 when it cannot tell). */
const WRONG_LAST_SEQUENCE = new Set([10071, 10164]);

export interface DurableWrite {
  subject: string;
  data: Uint8Array;
  /** Same id for every attempt of one logical write. */
  msgID: string;
  headers?: MsgHdrs;
  /** Compare-and-swap: the sequence of the subject's last message must be exactly this (0: no message). */
  expectLastSubjectSeq?: number;
  /** The stream's last sequence must be exactly this (kv-cas.ts: the guard old servers need). */
  expectLastSeq?: number;
  /** The compare-and-swap needs no guard against racing writers (store/types.ts WriteOptions.soleWriter). */
  soleWriter?: boolean;
}

export interface WriteTiming {
  attemptTimeoutMs: number;
  /** Give up (STATE_WRITE_FAILED) after this long in all. */
  totalMs: number;
  /** Stop early (STATE_WRITE_FAILED) once this says so: the store closed, or the write was superseded. */
  abandoned?: () => boolean;
  /** Each attempt waits for a slot here first (slot-gate.ts); its attempt timeout starts once it has one. */
  gate?: SlotGate;
}

/** Pause after an attempt that failed fast (no responders, a server error) so retries do not spin. */
const FAST_FAIL_PAUSE_MS = 200;

export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && WRONG_LAST_SEQUENCE.has(err.code);
}

/** The sequence a "wrong last sequence: N" refusal reports (the subject's or the stream's last), if it says. */
export function reportedLastSequence(err: unknown): number | null {
  const cause = err instanceof BentoError ? err.cause : err;
  const m = cause instanceof Error ? /wrong last sequence: (\d+)/.exec(cause.message) : null;
  return m ? Number(m[1]) : null;
}

/**
 * Publish W until JetStream acknowledges it. Rejects with STATE_CONFLICT when
 * the expected sequence does not match (nothing was written), STATE_WRITE_FAILED
 * when no ack came within totalMs (it may still land: use the same msgID to retry).
 */
export async function publishDurable(js: JetStreamClient, w: DurableWrite, t: WriteTiming): Promise<PubAck> {
  const started = Date.now();
  let last: unknown;
  for (;;) {
    const left = t.totalMs - (Date.now() - started);
    if (left <= 0 || t.abandoned?.()) break;
    const release = t.gate ? await t.gate.acquire(left) : null;
    if (t.gate && !release) { last = new Error(`${t.gate.limit} writes of this hub in flight, none answered in time`); break; }
    const t0 = Date.now();
    const attemptLeft = t.totalMs - (t0 - started);
    try {
      if (attemptLeft <= 0) break;
      return await js.publish(w.subject, w.data, {
        msgID: w.msgID,
        timeout: Math.max(1, Math.min(t.attemptTimeoutMs, attemptLeft)),
        retries: 1,
        ...(w.headers ? { headers: w.headers } : {}),
        expect: {
          ...(w.expectLastSubjectSeq !== undefined ? { lastSubjectSequence: w.expectLastSubjectSeq } : {}),
          ...(w.expectLastSeq !== undefined ? { lastSequence: w.expectLastSeq } : {}),
        },
      });
    } catch (err) {
      if (isWrongLastSequence(err)) {
        throw new BentoError('STATE_CONFLICT', `${w.subject} changed since revision ${w.expectLastSubjectSeq ?? w.expectLastSeq}`, { cause: err });
      }
      last = err;
      release?.(); // not held through the pause below (the finally's release is then a no-op)
      const spent = Date.now() - t0;
      if (spent < FAST_FAIL_PAUSE_MS) await new Promise((r) => setTimeout(r, Math.min(FAST_FAIL_PAUSE_MS - spent, Math.max(0, attemptLeft - spent))));
    } finally {
      release?.();
    }
  }
  const why = last instanceof Error ? last.message : 'abandoned';
  throw new BentoError('STATE_WRITE_FAILED', `NATS JetStream did not acknowledge the write to ${w.subject} within ${t.totalMs} ms (${why}); retrying`, { cause: last });
}

/**
 * Run a request until it answers, at most totalMs in all: a stream whose
 * servers just (re)started answers nothing until it has elected a leader.
 */
export async function untilAnswered<R>(fn: () => Promise<R>, totalMs: number, pauseMs = 200): Promise<R> {
  const deadline = Date.now() + totalMs;
  for (;;) {
    try { return await fn(); } catch (err) {
      if (Date.now() + pauseMs >= deadline) throw err;
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
}
