// `bento-hub deploy`: publish changed host configurations into their jails.
import type { CommandSpec } from '../../common/platform/cli.js';
import { ERRORS } from '../../common/protocol/errors.js';
import { runDeploy } from '../publish/run.js';
import { oneLine, REPORT_OPTIONS, runWithReport } from './publish-report.js';
import { withPublishStores } from '../cluster/content-cli.js';

export const deployCommand: CommandSpec = {
  name: 'deploy',
  usage: 'deploy [HOST...] [--force] [--jobs N] [--json] [--dir DIR]',
  summary: 'Publish each changed host configuration into its SFTP jail atomically; prints "updated HASH" or "no changes" per host.',
  details: [
    'For each host: copy its configuration (symlinks dereferenced; ones leaving the fleet are refused), hash it (paths,',
    'exec bits, contents), and compare with what its jail serves. A changed host is built first (as `bento-hub build`;',
    'a successful build of the same content is reused) and published only if the build succeeded, unless --force.',
    'Publishing is atomic: the tree is staged, renamed into versions/HASH, and version.json is replaced by one rename;',
    'a deploy killed at any moment leaves the previous version served intact. Agents pick the new version up on their',
    'next check (on connect, on every trigger, and every pullIntervalMs); `bento-hub trigger` applies it at once.',
    'Exit status: 0 when every host is updated or unchanged, 1 if any was refused or failed, 5 for an unknown host.',
  ].join('\n'),
  options: {
    force: { type: 'boolean', help: 'publish even if the build fails' },
    ...REPORT_OPTIONS,
  },
  positionals: { min: 0, max: Infinity },
  async run({ values, positionals }) {
    const rows = await runWithReport({
      verb: 'deploy', values, hosts: positionals,
      run: (base) => withPublishStores(base.fleetDir, (stores) => runDeploy({ ...base, stores, force: values['force'] === true })),
      head: ['HOST', 'RESULT', 'NOTE'],
      row: (r, c) => [
        r.host,
        r.result === 'updated' ? c(32, `updated ${r.hash}`) : r.result === 'no-changes' ? 'no changes' : c(31, r.result),
        oneLine(r.message),
      ],
    });
    return rows.every((r) => r.result === 'updated' || r.result === 'no-changes') ? 0 : ERRORS.BUILD_FAILED.exit;
  },
};
