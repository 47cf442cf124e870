// The bento-client program: run the agent, check a config, show its key.
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { ProgramSpec, CommandSpec, CommandContext } from '../../common/platform/cli.js';
import { createLogger } from '../../common/platform/log.js';
import { BentoError, type ErrorCode } from '../../common/protocol/errors.js';
import { fingerprintOfBlob } from '../../common/protocol/fingerprint.js';
import { loadClientConfig } from '../config.js';
import { Agent } from '../agent.js';
import { installRollbackGuard } from '../rollback/install.js';
import { installPull } from '../pull/plugin.js';
import { pullCommand } from '../pull/cmd-pull.js';
import { installLocalPage } from '../web/local-page.js';
import { upgradeCommand } from '../web/upgrade-cli.js';
import { installServiceTunnel } from '../cache/tunnel.js';
import { installReboot } from '../reboot/install.js';
import { installSecrets } from '../secrets/plugin.js';
import { installRestartWatch } from '../restart/install.js';
import { installPostSwitch } from '../jobs/post-switch.js';
import { installHealthCheck } from '../jobs/health-check.js';

function configPath(values: CommandContext['values']): string {
  const v = values['config'];
  if (typeof v !== 'string') throw new BentoError('USAGE', '--config FILE is required');
  return v;
}

const runCommand: CommandSpec = {
  name: 'run',
  usage: 'run --config FILE [--log-level LEVEL]',
  summary: 'Run the agent: keep one authenticated connection to the hub and run the jobs it pushes.',
  details: 'Reconnects forever with capped exponential backoff and full jitter. SIGINT/SIGTERM stop it; a running job is then reported as interrupted at the next start. Refuses to start (STATE_DIR_LOCKED, exit 6) while another agent runs on the same stateDir.',
  options: { 'log-level': { type: 'string', arg: 'LEVEL', help: 'trace, debug, info (default), warn, error' } },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const config = await loadClientConfig(configPath(values));
    const log = createLogger({ name: 'bento-client', level: typeof values['log-level'] === 'string' ? values['log-level'] : undefined }).child({ host: config.name });
    const agent = new Agent(config, log);
    // First, before any plugin reads the state: a second agent on this stateDir stops here (STATE_DIR_LOCKED).
    await agent.lockStateDir();
    // The host's health check before the guard: a failed check fails the switch, and the guard rolls it back (client/jobs/health-check.ts).
    installHealthCheck(agent, { settings: config.health, host: config.name, log: log.child({ component: 'health' }) });
    // The rollback guard next: its settle() must judge a switch before other hooks record it as applied.
    const guard = await installRollbackGuard(agent, config, log.child({ component: 'rollback' }));
    const stop = (): void => { void agent.stop(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // The config pull after the guard: its ended() hook records a switch as applied only once the guard judged it.
    const pull = await installPull(agent, config, log.child({ component: 'pull' }));
    // The local "upgrade now" page and socket (after the guard and the pull: it shows their verdicts).
    const page = await installLocalPage(agent, config, log.child({ component: 'local-page' }));
    // This host's secrets into secretsDir, outside the Nix store (client/secrets/).
    installSecrets(agent, config.secretsDir, log.child({ component: 'secrets' }));
    // Reboot on kernel/initrd/modules change, after the guard and the pull (client/reboot/).
    await installReboot(agent, config, log.child({ component: 'reboot' }));
    // postSwitchCommand, after the guard and the reboot hooks: it reports their final verdict (client/jobs/post-switch.ts).
    installPostSwitch(agent, { settings: config.postSwitch, host: config.name, currentSystem: config.currentSystem, systemProfile: config.systemProfile, log: log.child({ component: 'post-switch' }) });
    // The hub's binary cache on a loopback port, through this connection (client/cache/).
    const tunnel = await installServiceTunnel(agent, config.cache, log.child({ component: 'cache' }));
    // Last: restart when idle once the program or config changed on disk (client/restart/).
    const restart = await installRestartWatch(agent, { paths: config.restartOnChange, guard, log: log.child({ component: 'restart' }) });
    void guard.resume();
    pull.start();
    await agent.run();
    restart.stop();
    pull.stop();
    await tunnel?.close();
    await page?.close();
    return 0;
  },
};

/**
 * identityFile as the agent will load it: readable by this user, one
 * unencrypted private key. Returns the parsed key; CONFIG_INVALID says which
 * of those it is not, and what to do.
 */
async function readIdentity(file: string): Promise<ssh2.ParsedKey> {
  const data = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    const why = err.code === 'ENOENT' ? 'no such file (on NixOS the default is the host key; elsewhere create one: `ssh-keygen -t ed25519 -N "" -f FILE`)'
      : err.code === 'EACCES' ? `permission denied: run as the user the agent runs as (root for the host key), or make ${file} readable to it`
        : err.message;
    throw new BentoError('CONFIG_INVALID', `"identityFile" ${file}: cannot read it: ${why}`);
  });
  const parsed = ssh2.utils.parseKey(data);
  if (parsed instanceof Error) throw new BentoError('CONFIG_INVALID', `"identityFile" ${file}: not a usable private key (${parsed.message})`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || (Array.isArray(parsed) && parsed.length !== 1)) throw new BentoError('CONFIG_INVALID', `"identityFile" ${file}: holds several keys; give it one`);
  if (!key.isPrivateKey()) throw new BentoError('CONFIG_INVALID', `"identityFile" ${file}: is a public key; give the private key (the file without .pub)`);
  return key;
}

const checkCommand: CommandSpec = {
  name: 'check-config',
  usage: 'check-config --config FILE [--json]',
  summary: 'Validate a config file and print the endpoints it would use, without connecting.',
  details: [
    'Also reads "identityFile" as the agent would: it must be readable by this user and hold one unencrypted private key.',
    '--skip-identity leaves that out, for checks where the host\'s key cannot be visible (the NixOS module\'s, in a Nix build).',
  ].join('\n'),
  options: {
    json: { type: 'boolean', help: 'print the normalised config as JSON' },
    'skip-identity': { type: 'boolean', help: 'do not read identityFile (build-time checks)' },
  },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const config = await loadClientConfig(configPath(values));
    const key = values['skip-identity'] === true ? null : await readIdentity(config.identityFile);
    if (values['json']) process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    else {
      process.stdout.write(`${config.name}: ok\n${config.endpoints.map((e, i) => `  endpoint ${i + 1}: ${e.label}`).join('\n')}\n`);
      process.stdout.write(`  identity: ${config.identityFile} (${key ? `${key.type}, ${fingerprintOfBlob(key.getPublicSSH())}` : 'not checked: --skip-identity'})\n`);
    }
    return 0;
  },
};

const pubkeyCommand: CommandSpec = {
  name: 'pubkey',
  usage: 'pubkey --config FILE',
  summary: 'Print the public key of identityFile, the line `bento-hub add-host NAME --key` wants.',
  options: {},
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const config = await loadClientConfig(configPath(values));
    const parsed = await readIdentity(config.identityFile);
    const blob = parsed.getPublicSSH();
    process.stdout.write(`${parsed.type} ${blob.toString('base64')} ${config.name}\n`);
    process.stderr.write(`fingerprint ${fingerprintOfBlob(blob)}\n`);
    return 0;
  },
};

/**
 * What bento-client can exit with: the codes its own code raises, and those
 * the hub closes its session with (REPLACED; PROTOCOL_* from the hub's
 * checks). test/unit/cli-exit-codes.test.ts checks the first half against
 * the sources, so `--help` never shows a hub-only code such as HUB_NOT_RUNNING.
 */
export const CLIENT_ERROR_CODES: readonly ErrorCode[] = [
  'USAGE', 'CONFIG_INVALID', 'STATE_DIR_LOCKED', 'AGENT_NOT_RUNNING', 'NOT_PUBLISHED', 'JOB_FAILED', 'MACHINE_ID_MISMATCH',
  'CONNECT_FAILED', 'HOST_KEY_MISMATCH', 'AUTH_REJECTED', 'PROXY_FAILED', 'REPLACED', 'FORBIDDEN', 'HASH_MISMATCH',
  'PROTOCOL_MALFORMED', 'PROTOCOL_OVERSIZED', 'PROTOCOL_UNKNOWN_TYPE', 'PROTOCOL_VERSION', 'PROTOCOL_STATE', 'INTERNAL',
];

export const clientProgram: ProgramSpec = {
  bin: 'bento-client',
  summary: 'Bento agent: keeps this host\'s tunnel to the hub open and runs the rebuilds it pushes.',
  commonOptions: { config: { type: 'string', arg: 'FILE', help: 'agent config (JSON)' } },
  errorCodes: CLIENT_ERROR_CODES,
  commands: [runCommand, checkCommand, pubkeyCommand, pullCommand, upgradeCommand],
};
