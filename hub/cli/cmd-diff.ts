// `bento-hub diff HOST...`: what changes between the system a host runs (its
// hello `system`, kept in the host-state journal) and the one the hub built for
// it (state/builds/NAME.json storePath, from `bento-hub build`), with nvd when
// it is on PATH and `nix store diff-closures` otherwise. Both store paths must
// be in the hub's Nix store (the hub built them, or they were copied there).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { CommandSpec } from '../../common/platform/cli.js';
import { BentoError } from '../../common/protocol/errors.js';
import { isHostName } from '../../common/protocol/names.js';
import { readBuildRecord } from '../publish/build.js';
import { readHostState } from '../store/host-state.js';
import { fleetDir, str } from './util.js';

export type DiffTool = 'nvd' | 'nix';

export function findOnPath(bin: string, envPath = process.env['PATH'] ?? ''): string | null {
  for (const d of envPath.split(':')) if (d && existsSync(path.join(d, bin))) return path.join(d, bin);
  return null;
}

export function diffArgv(tool: DiffTool, from: string, to: string): string[] {
  return tool === 'nvd' ? ['nvd', 'diff', from, to]
    : ['nix', '--extra-experimental-features', 'nix-command', 'store', 'diff-closures', from, to];
}

/** The host's running system as last reported at hello, or null. */
async function runningSystem(dir: string, host: string): Promise<string | null> {
  // Loaded here: the state backends (NATS among them) cost every CLI call ~0.15 s of CPU to load.
  const { readFleetState } = await import('../store/open.js');
  const state = readFleetState(dir);
  const s = (await readHostState(state, host).catch(() => null).finally(() => state.close()))?.system;
  return typeof s === 'string' && s.startsWith('/nix/store/') ? s : null;
}

function run(argv: string[], out: (s: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => out(d.toString()));
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

export const diffCommand: CommandSpec = {
  name: 'diff',
  usage: 'diff HOST... [--from PATH] [--to PATH] [--tool nvd|nix] [--dir DIR]',
  summary: 'Show what a deploy would change on each host: its running system versus the one the hub built (nvd, else nix store diff-closures).',
  details: [
    'The running system is the host\'s last hello (the "system" it reported, in state/hosts/_journal.ndjson); the new one is the store path of its',
    'last successful `bento-hub build` (state/builds/HOST.json). --from / --to override either (one HOST only).',
    'Both paths must exist in the hub\'s Nix store. Exit 1 if any host could not be diffed.',
  ].join('\n'),
  options: {
    from: { type: 'string', arg: 'PATH', help: 'old system store path (default: the host\'s running system)' },
    to: { type: 'string', arg: 'PATH', help: 'new system store path (default: the hub\'s last build for the host)' },
    tool: { type: 'string', arg: 'TOOL', help: 'nvd or nix (default: nvd when on PATH, else nix)' },
  },
  positionals: { min: 1, max: Infinity },
  async run({ values, positionals }) {
    const dir = fleetDir(values);
    const toolOpt = str(values, 'tool');
    if (toolOpt !== undefined && toolOpt !== 'nvd' && toolOpt !== 'nix') throw new BentoError('USAGE', '--tool must be nvd or nix');
    const tool: DiffTool = (toolOpt as DiffTool | undefined) ?? (findOnPath('nvd') ? 'nvd' : 'nix');
    const fromOpt = str(values, 'from');
    const toOpt = str(values, 'to');
    if ((fromOpt || toOpt) && positionals.length !== 1) throw new BentoError('USAGE', '--from/--to apply to a single HOST');
    let failed = 0;
    for (const host of positionals) {
      if (!isHostName(host)) throw new BentoError('USAGE', `invalid host name ${JSON.stringify(host)}`);
      const from = fromOpt ?? await runningSystem(dir, host);
      const to = toOpt ?? (await readBuildRecord(dir, host))?.storePath ?? null;
      const problem = !from ? 'its running system is unknown (it has not connected since it was added)'
        : !to ? 'it has no built system yet (run `bento-hub build ' + host + '`)'
        : !existsSync(from) ? `its running system ${from} is not in the hub's Nix store`
        : !existsSync(to) ? `the built system ${to} is not in the hub's Nix store`
        : null;
      process.stdout.write(`${host}: ${from ?? '?'} -> ${to ?? '?'}\n`);
      if (problem) {
        process.stderr.write(`bento-hub diff: ${host}: ${problem}\n`);
        failed++;
        continue;
      }
      if (from === to) {
        process.stdout.write('  (no changes: the host already runs the built system)\n');
        continue;
      }
      let empty = true;
      const code = await run(diffArgv(tool, from!, to!), (s) => { if (s.trim()) empty = false; process.stdout.write(s); }).catch((err: Error) => {
        process.stderr.write(`bento-hub diff: cannot run ${tool}: ${err.message}\n`);
        return 127;
      });
      if (code !== 0) failed++;
      else if (empty) process.stdout.write('  (no package version changes)\n');
    }
    return failed ? 1 : 0;
  },
};
