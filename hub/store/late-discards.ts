// Job records this hub gave up on, that may still land (JobStore.discard).
// A trigger whose queued record NATS did not acknowledge in time is refused
// to the admin ("it must not run later"); the store stops retrying the write
// (KeyedStore.abandon), but an attempt already on the wire can still be
// stored once NATS answers, and whichever hub the host reaches would then
// run a job its admin was told had failed (found by review). Such a record
// is deleted when it shows up, if it is exactly the one given up: a queued
// job's id is shared by every hub, and another hub's record under it stays.
import type { Logger } from '../../common/platform/log.js';
import { sameRecord, type JobRecord } from './job-record.js';
import type { KeyedStore, StoreChange } from './types.js';

export interface LateDiscardsDeps {
  records: Pick<KeyedStore<JobRecord>, 'delete'>;
  log: Logger;
  /** How long a given-up write is watched for (past every attempt's deadline). Default 2 min. */
  forMs?: number;
  /** At most this many are watched (the oldest is let go). Default 1,024. */
  max?: number;
}

export class LateDiscards {
  private readonly waiting = new Map<string, { rec: JobRecord; timer: NodeJS.Timeout }>();

  constructor(private readonly d: LateDiscardsDeps) {}

  /** REC was given up: delete it if it lands. */
  add(rec: JobRecord): void {
    this.forget(rec.id);
    const max = this.d.max ?? 1024;
    for (const id of this.waiting.keys()) {
      if (this.waiting.size < max) break;
      this.forget(id);
    }
    const timer = setTimeout(() => this.waiting.delete(rec.id), this.d.forMs ?? 120_000);
    timer.unref();
    this.waiting.set(rec.id, { rec, timer });
  }

  /** A change in the store: a given-up record landing after all is deleted. */
  changed(c: StoreChange<JobRecord>): void {
    const w = this.waiting.get(c.key);
    if (!w || c.op !== 'set') return;
    this.forget(c.key);
    if (!sameRecord(c.value, w.rec)) return; // another hub's record under the shared id
    this.d.log.warn({ jobId: c.key, host: w.rec.host }, 'a job whose write had failed (its trigger was refused) was stored after all; removing it');
    this.d.records.delete(c.key, { expectRevision: c.revision }).catch((err: Error) => {
      this.d.log.warn({ jobId: c.key, err: err.message }, 'cannot remove a job whose trigger was refused; it may run');
    });
  }

  close(): void {
    for (const id of [...this.waiting.keys()]) this.forget(id);
  }

  private forget(id: string): void {
    const w = this.waiting.get(id);
    if (!w) return;
    clearTimeout(w.timer);
    this.waiting.delete(id);
  }
}
