// A job another hub queued for a host this hub holds, which this hub did not
// see at the host's hello: the other hub queued it before it heard of this
// hub's claim (the host was between hubs), or this hub's view of the job
// records lagged (its watch was being replaced after a NATS server died).
// The hello's takeover (scheduler.ts) found nothing, and without this the job
// would wait, "queued", for the host's next reconnect; the soak
// (test/soak/soak.ts) found such jobs. So every queued record that reaches
// this hub's view for a host connected here is handed to the scheduler, which
// makes it the host's pending job if it has none (one pending job per host).
import type { JobStore } from '../store/jobs.js';

export interface LateQueuedDeps {
  store: Pick<JobStore, 'watch'>;
  sessions: { get(host: string): unknown };
  /** The scheduler: HOST, connected here, may have a queued job it does not know of. */
  queuedLate(host: string): Promise<void>;
  onError(host: string, err: Error): void;
}

/** Returns the unsubscribe function. */
export function followLateQueued(d: LateQueuedDeps): () => void {
  return d.store.watch((rec) => {
    if (rec.state !== 'queued' || !d.sessions.get(rec.host)) return;
    d.queuedLate(rec.host).catch((err: Error) => d.onError(rec.host, err));
  });
}
