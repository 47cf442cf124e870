// Wire reboot-on-kernel-change into an agent. Install AFTER the rollback guard
// (and the pull): its settle() must only see switches the guard accepted.
import type { Logger } from '../../common/platform/log.js';
import type { Agent } from '../agent.js';
import type { ClientConfig } from '../config.js';
import { RebootHooks } from './hooks.js';

export async function installReboot(agent: Agent, config: ClientConfig, log: Logger): Promise<RebootHooks> {
  const hooks = new RebootHooks({
    enabled: config.rebootOnKernelChange,
    command: config.rebootCommand,
    method: config.rebootMethod,
    currentSystem: config.currentSystem,
    systemProfile: config.systemProfile,
    stateDir: config.stateDir,
    env: config.rebuildEnv,
    log,
    unreported: () => agent.jobs.unreportedIds(),
  });
  agent.addJobHooks(hooks);
  // Also a plugin: its hello carries "back after the reboot" until a hub welcomes it.
  agent.use(hooks);
  await hooks.atStart();
  return hooks;
}
