// A job result the hub could not write (a full disk) is not acknowledged, so
// the agent keeps it. This retries the write every 2 s while that agent stays
// connected and sends job.ack once the record is on disk. If the agent
// disconnects first, it replays the result on its next connection anyway.
import type { JobRecord, JobStore } from '../store/jobs.js';
import type { AgentLink } from './agent-link.js';
import type { Logger } from '../../common/platform/log.js';

const RETRY_MS = 2000;
/** Half an hour of a full disk before the hub leaves it to the agent's next connection. */
const MAX_ATTEMPTS = 900;

export interface DurableAckOptions {
  store: JobStore;
  session: AgentLink;
  /** The result as the agent reported it (what is being made durable, not what the store shows now). */
  record: JobRecord;
  log: Logger;
  /**
   * Once it is durable and acknowledged. The scheduler clears the host's
   * active job here and sends its next one: a hello handled again meanwhile
   * (arrivals.ts retryFailed) saw the job still open and made it active
   * again, and the host's next job then waited for an end that had come
   * (the soak: six queued jobs never sent).
   */
  onDurable?: () => void;
}

export function ackWhenDurable(o: DurableAckOptions, attempt = 1): void {
  const t = setTimeout(() => {
    if (o.session.closed) return;
    o.store.save(o.record).then(
      () => { o.session.send({ type: 'job.ack', jobId: o.record.id }); o.onDurable?.(); },
      (err: Error) => {
        // Once, then every 5 minutes: a result that cannot be recorded is rare and must be visible.
        if (attempt === 1 || attempt % 150 === 0) o.log.warn({ host: o.record.host, jobId: o.record.id, attempt, err: err.message }, 'still cannot record a job result; the agent keeps it until it is');
        if (attempt < MAX_ATTEMPTS) ackWhenDurable(o, attempt + 1);
      },
    );
  }, RETRY_MS);
  t.unref();
}
