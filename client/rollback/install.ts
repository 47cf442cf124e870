// Wire the rollback guard into an agent: plugin (connection events, hello),
// job hooks (prepare/settle), and the start-up check of a leftover record.
import type { Logger } from '../../common/platform/log.js';
import type { Agent } from '../agent.js';
import type { ClientConfig } from '../config.js';
import { RollbackGuard } from './guard.js';

/**
 * Call before agent.run(), then call `resume()` on the result beside it:
 *   const guard = await installRollbackGuard(agent, config, log);
 *   void guard.resume(); await agent.run();
 */
export async function installRollbackGuard(agent: Agent, config: ClientConfig, log: Logger): Promise<RollbackGuard> {
  const guard = new RollbackGuard({
    agent,
    stateDir: config.stateDir,
    currentSystem: config.currentSystem,
    systemProfile: config.systemProfile,
    env: config.rebuildEnv,
    timeoutMs: config.rollbackTimeoutMs,
    enabled: config.rollback,
    log,
  });
  agent.use(guard);
  agent.addJobHooks(guard);
  await guard.atStart();
  return guard;
}
