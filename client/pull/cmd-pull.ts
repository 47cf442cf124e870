// `bento-client pull`: one pull over a fresh connection, now.
import { readFile } from 'node:fs/promises';
import type { CommandSpec, CommandContext } from '../../common/platform/cli.js';
import { createLogger } from '../../common/platform/log.js';
import { BentoError, ERRORS } from '../../common/protocol/errors.js';
import { loadClientConfig } from '../config.js';
import { ConfigPuller } from './puller.js';

export const pullCommand: CommandSpec = {
  name: 'pull',
  usage: 'pull --config FILE [--json]',
  summary: 'Fetch the published configuration over a fresh connection and install it into configDir (no rebuild).',
  details: [
    'Makes its own connection (the config\'s endpoints in the agent\'s endpointOrder, the next after any failure,',
    'a refused hub key included; same carriers and proxies, same pinned hub keys;',
    'or "pullFrom" when set), compares the published content hash with the installed one, and if it changed downloads',
    'the configuration into staging, verifies the hash and swaps configDir to it atomically. Queued job logs are',
    'uploaded too. It does not rebuild: `bento-hub trigger` or the running agent (autoApply) does.',
    'Exit status: 0 installed or already current; 5 (NOT_PUBLISHED) nothing published for this host;',
    '1 could not connect / hub key mismatch / key refused / downloaded tree does not match its hash (HASH_MISMATCH).',
    'With --json: {"status","hash","previous","layout","via","bytesIn","bytesOut","downloaded","logsUploaded"}.',
  ].join('\n'),
  options: { json: { type: 'boolean', help: 'print the result as JSON' } },
  positionals: { min: 0, max: 0 },
  async run({ values }: CommandContext) {
    const file = values['config'];
    if (typeof file !== 'string') throw new BentoError('USAGE', '--config FILE is required');
    const config = await loadClientConfig(file);
    const log = createLogger({ name: 'bento-client', level: process.env['BENTO_LOG_LEVEL'] ?? 'warn' }).child({ host: config.name });
    const key = await readFile(config.identityFile).catch((err: Error) => {
      throw new BentoError('CONFIG_INVALID', `cannot read identityFile ${config.identityFile}: ${err.message}`);
    });
    const puller = new ConfigPuller({ config, log, privateKey: key });
    await puller.init();
    const r = await puller.check({ reason: 'manual', apply: true });
    const logsUploaded = r.status === 'not-published' ? 0 : await puller.uploadLogs().catch(() => 0);
    if (values['json']) process.stdout.write(`${JSON.stringify({ ...r, logsUploaded })}\n`);
    else if (r.status === 'not-published') process.stderr.write(`${config.name}: nothing is published for this host (via ${r.via})\n`);
    else if (r.status === 'updated') process.stdout.write(`${config.name}: updated ${r.hash} (was ${r.previous ?? 'none'}) in ${config.pull.configDir}\n`);
    else process.stdout.write(`${config.name}: up to date ${r.hash}\n`);
    return r.status === 'not-published' ? ERRORS.NOT_PUBLISHED.exit : 0;
  },
};
