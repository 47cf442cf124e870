// `bento-hub logs HOST`: the job logs a host uploaded into its jail (in a
// cluster: into any hub's jail; they are kept in the cluster's archive).
import type { CommandSpec } from '../../common/platform/cli.js';
import { BentoError } from '../../common/protocol/errors.js';
import { isHostName } from '../../common/protocol/names.js';
import { fleetPaths } from '../fleet/paths.js';
import { LOG_NAME_RE } from '../sftp/vpath.js';
import { withLogReader } from '../cluster/content-cli.js';
import { requireFleet } from './cmd-fleet.js';
import { fleetDir, printJson, printTable } from './util.js';

export const logsCommand: CommandSpec = {
  name: 'logs',
  usage: 'logs HOST [FILE] [--list] [--json] [--dir DIR]',
  summary: 'Show the job logs a host uploaded after its rebuilds: the newest one, a named one, or --list.',
  details: [
    'Agents upload each job\'s output, gzip-compressed, into their jail\'s logs/ as',
    'YYYYMMDD-HHMMSS_<system>_g<generation>_<outcome>.log.gz (upstream Bento\'s naming plus seconds and generation).',
    'Without FILE the newest log is printed. Works without a running hub. In a cluster (hub.json "cluster") it shows the',
    'logs the host uploaded at any hub; with NATS unreachable, those held at this hub (and says so on stderr).',
    'Exit status: 0, 5 for an unknown host or when there is no such log.',
  ].join('\n'),
  options: {
    list: { type: 'boolean', help: 'list the logs (oldest first) instead of printing one' },
    json: { type: 'boolean', help: 'with --list: JSON; otherwise {"name","text","complete"}' },
  },
  positionals: { min: 1, max: 2 },
  async run({ values, positionals }) {
    const dir = fleetDir(values);
    const p = fleetPaths(dir);
    await requireFleet(p.hubConfig);
    const host = positionals[0]!;
    if (!isHostName(host)) throw new BentoError('INVALID_HOST_NAME', `"${host}" is not a host name`);
    return withLogReader(dir, async (reader, registered) => {
      const logs = await reader.list(host);
      if (logs.length === 0 && !(await registered(host))) throw new BentoError('UNKNOWN_HOST', `no host "${host}" in the registry and no logs for it`);
      const json = values['json'] === true;
      if (values['list']) {
        if (json) printJson({ host, logs });
        else if (logs.length === 0) process.stdout.write(`no logs from ${host} yet\n`);
        else printTable(['FILE', 'TIME', 'OUTCOME', 'GEN', 'SIZE', 'SYSTEM'], logs.map((l) => [
          l.name, l.time ?? l.mtime, l.outcome ?? '-', l.generation === null ? '-' : String(l.generation), String(l.size), l.system ?? '-',
        ]));
        return 0;
      }
      const name = positionals[1] ?? logs.at(-1)?.name;
      if (!name) throw new BentoError('UNKNOWN_HOST', `no logs from ${host} yet`);
      const got = LOG_NAME_RE.test(name) && logs.some((l) => l.name === name) ? await reader.read(host, name) : null;
      if (!got) throw new BentoError('UNKNOWN_HOST', `${host} has no log named "${name}" (see --list)`);
      const { text, complete, cutAt } = got;
      if (json) printJson({ host, name, text, complete, ...(cutAt !== undefined ? { cutAt } : {}) });
      else {
        process.stderr.write(`==> ${host}: ${name}${complete ? '' : cutAt !== undefined ? ` (its text is cut at ${cutAt} bytes)` : ' (truncated upload)'}\n`);
        process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
      }
      return 0;
    }, (why) => { process.stderr.write(`bento-hub logs: ${why}\n`); });
  },
};
