// A KV bucket read key by key when needed, and changed by compare-and-swap
// (read, change, write if still at that revision, else read again). For
// records a hub touches only now and then whose total would be too large to
// keep in a local view on every hub, like each host's list of uploaded logs
// (45,000 hosts with 50 logs each is ~250 MB). Writes carry a message id and
// use the same CAS guard as the keyed stores (kv-cas.ts: exact on Debian's
// 2.9.10 too); every record read is validated by `accept`.
import { headers as natsHeaders, nuid } from '@nats-io/transport-node';
import { BentoError } from '../../common/protocol/errors.js';
import { exactSubjectCheck, publishCas, type CasGuard } from './kv-cas.js';
import { leaderLast } from './kv-leader.js';
import { encodeToken } from './names.js';
import type { BucketHandle } from './nats-backend.js';

export interface DirectEntry<T> { value: T; revision: number }

/** How long update() keeps going while other hubs change the same record. */
const UPDATE_BUDGET_MS = 15_000;

export class DirectKv<T> {
  private readonly idBase = nuid.next();
  private gen = 0;
  private seen = 0;
  private readonly guard: CasGuard;

  constructor(private readonly b: BucketHandle, private readonly accept: (key: string, v: unknown) => v is T) {
    const stream = `KV_${b.bucket}`;
    this.guard = {
      serverVersion: () => b.nc.info?.version,
      needed: () => !exactSubjectCheck(b.nc.info?.version),
      streamLastGuess: () => this.seen,
      subjectLast: async (subject) => (await b.jsm.streams.getMessage(stream, { last_by_subj: subject }))?.seq ?? 0,
      streamLast: async () => (await b.jsm.streams.info(stream)).state.last_seq,
    };
  }

  /** KEY's record now, or null (absent, deleted, or failing `accept`). CLUSTER_UNAVAILABLE when NATS does not answer. */
  async get(key: string): Promise<DirectEntry<T> | null> {
    const e = await this.raw(key);
    return e && e.value !== null ? { value: e.value, revision: e.revision } : null;
  }

  /**
   * Read KEY, let FN compute its new value (null: delete it; undefined: leave
   * it as it is), write that if KEY is still at the revision read; on a
   * conflict read again and rerun FN. Resolves with what was stored.
   */
  async update(key: string, fn: (cur: T | null) => T | null | undefined): Promise<T | null> {
    const started = Date.now();
    for (;;) {
      const cur = await this.raw(key);
      const next = fn(cur?.value ?? null);
      if (next === undefined) return cur?.value ?? null;
      try {
        await this.write(key, next, cur?.revision ?? 0);
        return next;
      } catch (err) {
        if (!(err instanceof BentoError && err.code === 'STATE_CONFLICT') || Date.now() - started > UPDATE_BUDGET_MS) throw err;
      }
    }
  }

  /** The last record of KEY: its value (null for a deletion or a record failing `accept`) and revision (0: never written). */
  private async raw(key: string): Promise<{ value: T | null; revision: number } | null> {
    // From the stream leader, never a direct get (any replica answers those): the revision is what the
    // compare-and-swap is checked against, and a restarted 2.9.10 replica may number records differently (kv-leader.ts).
    let e;
    try {
      e = await leaderLast(this.b.jsm, `KV_${this.b.bucket}`, `$KV.${this.b.bucket}.${encodeToken(key)}`);
    } catch (err) {
      throw new BentoError('CLUSTER_UNAVAILABLE', `cannot read ${this.b.bucket}/${key}: ${(err as Error).message}`, { cause: err });
    }
    if (!e) return null;
    if (e.revision > this.seen) this.seen = e.revision;
    if (e.kind !== 'PUT') return { value: null, revision: e.revision };
    return { value: e.parsed && this.accept(key, e.value) ? e.value : null, revision: e.revision };
  }

  private async write(key: string, value: T | null, expect: number): Promise<void> {
    const data = value === null ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(value));
    const max = this.b.nc.info?.max_payload ?? 1024 * 1024;
    if (data.length + 1024 > max) throw new BentoError('STATE_WRITE_FAILED', `${this.b.bucket}/${key}: record of ${data.length} bytes is larger than NATS accepts (max_payload ${max})`);
    const headers = value === null ? natsHeaders() : undefined;
    headers?.set('KV-Operation', 'DEL');
    const ack = await publishCas(this.b.js, {
      subject: `$KV.${this.b.bucket}.${encodeToken(key)}`, data, msgID: `${this.idBase}.${++this.gen}`,
      expectLastSubjectSeq: expect, ...(headers ? { headers } : {}),
    }, { attemptTimeoutMs: this.b.requestTimeoutMs, totalMs: this.b.writeTimeoutMs }, this.guard);
    if (ack.seq > this.seen) this.seen = ack.seq;
  }
}
