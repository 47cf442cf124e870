// A job result the hub could not write (a full disk) is not acknowledged, so
// the agent keeps it. This retries the write every 2 s while that agent stays
// connected and sends job.ack once the record is on disk. If the agent
// disconnects first, it replays the result on its next connection anyway.
import type { JobStore } from '../store/jobs.js';
import type { AgentLink } from './agent-link.js';

const RETRY_MS = 2000;
/** Half an hour of a full disk before the hub leaves it to the agent's next connection. */
const MAX_ATTEMPTS = 900;

export function ackWhenDurable(o: { store: JobStore; session: AgentLink; jobId: string }, attempt = 1): void {
  const t = setTimeout(() => {
    const rec = o.store.get(o.jobId);
    if (o.session.closed || !rec) return;
    o.store.save(rec).then(
      () => o.session.send({ type: 'job.ack', jobId: o.jobId }),
      () => { if (attempt < MAX_ATTEMPTS) ackWhenDurable(o, attempt + 1); },
    );
  }, RETRY_MS);
  t.unref();
}
