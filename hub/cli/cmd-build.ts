// `bento-hub build`: validate host configurations locally with the real Nix
// tools, in parallel, with a progress display and one result row per host.
import type { CommandSpec } from '../../common/platform/cli.js';
import { ERRORS } from '../../common/protocol/errors.js';
import { runBuild } from '../publish/run.js';
import { oneLine, REPORT_OPTIONS, runWithReport } from './publish-report.js';
import { withPublishStores } from '../cluster/content-cli.js';

export const buildCommand: CommandSpec = {
  name: 'build',
  usage: 'build [HOST...] [--dry] [--jobs N] [--json] [--dir DIR]',
  summary: 'Build host configurations locally with the real Nix tools (nixos-rebuild build), in parallel; exits 0 only if all built.',
  details: [
    'Each host\'s configuration (hosts/NAME/configuration.nix, or a flake under hosts/ defining NAME) is copied with its',
    'symlinks dereferenced, exactly as `deploy` would publish it, then built with hub.json publish.buildCommand',
    '(default `nixos-rebuild`) + `build` (or `dry-build` with --dry) + `-I nixos-config=DIR/configuration.nix` or',
    '`--flake DIR#NAME`. Results and logs are kept in state/builds/NAME.{json,log} (dry: NAME.dry.*); `deploy` reuses a successful build',
    'of the same content. Exit status: 0 all built, 1 (BUILD_FAILED) if any host failed, 5 for an unknown host.',
  ].join('\n'),
  options: {
    dry: { type: 'boolean', help: 'evaluate only (nixos-rebuild dry-build)' },
    ...REPORT_OPTIONS,
  },
  positionals: { min: 0, max: Infinity },
  async run({ values, positionals }) {
    const rows = await runWithReport({
      verb: 'build', values, hosts: positionals,
      run: (base) => withPublishStores(base.fleetDir, (stores) => runBuild({ ...base, stores, dry: values['dry'] === true })),
      head: ['HOST', 'RESULT', 'TIME', 'HASH', 'NOTE'],
      row: (r, c) => [
        r.host, r.result === 'ok' ? c(32, 'ok') : c(31, r.result), `${(r.durationMs / 1000).toFixed(1)}s`, r.hash?.slice(0, 12) ?? '-',
        oneLine(r.message || (r.build?.dry ? 'evaluated' : '')),
      ],
    });
    return rows.every((r) => r.result === 'ok') ? 0 : ERRORS.BUILD_FAILED.exit;
  },
};
