// Wire the restart-on-change watch into an agent (see watch.ts). Installed
// last, so its ended() hook runs after every other hook has seen the job.
import type { JobStart, JobEnd } from '../../common/protocol/messages.js';
import type { Logger } from '../../common/platform/log.js';
import type { Agent } from '../agent.js';
import type { RollbackGuard } from '../rollback/guard.js';
import { RestartWatch } from './watch.js';

export async function installRestartWatch(agent: Agent, o: { paths: string[]; guard: RollbackGuard; log: Logger }): Promise<RestartWatch> {
  const watch = new RestartWatch({
    paths: o.paths,
    log: o.log,
    idle: () => agent.jobs.runningJobId === null && !o.guard.busy,
    unreported: () => agent.jobs.unreportedIds(),
    restart: () => { void agent.stop(); },
  });
  await watch.start();
  agent.addJobHooks({
    ended: async (_job: JobStart, _end: JobEnd) => { setImmediate(() => { void watch.check(); }); },
  });
  return watch;
}
