// The bento-hub program: its commands, in the order `--help` lists them.
import type { ProgramSpec } from '../../common/platform/cli.js';
import { initCommand, addHostCommand, removeHostCommand, hostsCommand, fingerprintCommand } from './cmd-fleet.js';
import { hostKeysCommand } from './cmd-keys.js';
import { serveCommand } from './cmd-serve.js';
import { listCommand } from './cmd-list.js';
import { statusCommand } from './cmd-status.js';
import { triggerCommand } from './cmd-trigger.js';
import { jobCommand } from './cmd-job.js';
import { rolloutCommand } from './cmd-rollout.js';
import { proxyCommand, sshCommand, sshConfigCommand } from './cmd-ssh.js';
import { importCommand } from './cmd-import.js';
import { buildCommand } from './cmd-build.js';
import { deployCommand } from './cmd-deploy.js';
import { logsCommand } from './cmd-logs.js';
import { diffCommand } from './cmd-diff.js';
import { clusterCommand } from './cmd-cluster.js';

export const hubProgram: ProgramSpec = {
  bin: 'bento-hub',
  summary: 'Bento hub: holds every agent\'s persistent SSH tunnel and pushes rebuilds through it.',
  commonOptions: {
    dir: { type: 'string', arg: 'DIR', help: 'fleet directory (default $BENTO_DIR, else /var/lib/bento)' },
  },
  commands: [
    initCommand, addHostCommand, removeHostCommand, hostKeysCommand, hostsCommand, fingerprintCommand, serveCommand,
    listCommand, statusCommand, clusterCommand, triggerCommand, jobCommand, rolloutCommand, proxyCommand, sshCommand, sshConfigCommand,
    importCommand,
    buildCommand, deployCommand, logsCommand, diffCommand,
  ],
};

