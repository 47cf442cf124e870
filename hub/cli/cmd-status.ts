// `bento-hub status [--json] [--watch]`: one row per registered host with
// its state (docs/status.md). --watch redraws in place on a terminal until
// Ctrl-C; elsewhere it appends one snapshot per refresh.
import type { CommandSpec } from '../../common/platform/cli.js';
import { colour } from '../../common/platform/cli.js';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import type { AdminEvent } from '../../common/protocol/admin.js';
import { fleetPaths } from '../fleet/paths.js';
import { adminCall } from '../admin/client.js';
import { renderTable } from '../status/format.js';
import { fleetDir, str } from './util.js';

type StatusEvent = Extract<AdminEvent, { ev: 'status' }>;

export const MIN_INTERVAL_S = 0.5;
export const MAX_INTERVAL_S = 60;

export const statusCommand: CommandSpec = {
  name: 'status',
  usage: 'status [--json] [--watch [--interval SECONDS]] [--dir DIR]',
  summary: 'Per-host state table: connection, carrier, published and applied version, system and generation, state, running or last job (and a queued one), when and how long.',
  details: [
    'States: never connected, new machine, up to date, nothing published, rebuild pending, sync pending, failing, rolled back,',
    'auto updated, running, offline (exact rules in docs/status.md). Hosts that need attention are listed first and get a note',
    'under the table; --json keeps the hosts in name order.',
    `--watch refreshes every --interval seconds (default 2, ${MIN_INTERVAL_S}..${MAX_INTERVAL_S}); on a terminal it redraws in place,`,
    'otherwise it appends a snapshot per refresh (with --json: one JSON document per line). Ctrl-C ends it (exit 0).',
  ].join('\n'),
  options: {
    json: { type: 'boolean', help: 'print JSON ({ "generatedAt", "hosts": [...] }, stable field names)' },
    watch: { type: 'boolean', help: 'keep refreshing until Ctrl-C' },
    interval: { type: 'string', arg: 'SECONDS', help: `refresh period for --watch (default 2, ${MIN_INTERVAL_S}..${MAX_INTERVAL_S})` },
  },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const socket = fleetPaths(fleetDir(values)).adminSocket;
    const json = values['json'] === true;
    const fetch = (): Promise<StatusEvent> => adminCall(socket, { op: 'status' }, 'status');
    if (values['watch'] !== true) {
      if (values['interval'] !== undefined) throw new BentoError('USAGE', '--interval only applies with --watch');
      const s = await fetch();
      process.stdout.write(json ? `${JSON.stringify({ generatedAt: s.generatedAt, hosts: s.hosts }, null, 2)}\n` : renderTable(s.hosts, Date.now(), colour(process.stdout)));
      return 0;
    }
    const intervalS = Number(str(values, 'interval') ?? '2');
    if (!Number.isFinite(intervalS) || intervalS < MIN_INTERVAL_S || intervalS > MAX_INTERVAL_S) {
      throw new BentoError('USAGE', `--interval must be a number of seconds in ${MIN_INTERVAL_S}..${MAX_INTERVAL_S}`);
    }
    return watch(fetch, { json, intervalMs: Math.round(intervalS * 1000) });
  },
};

async function watch(fetch: () => Promise<StatusEvent>, o: { json: boolean; intervalMs: number }): Promise<number> {
  const out = process.stdout;
  const tty = out.isTTY === true && !o.json;
  const paint = colour(out);
  let stopped = false;
  let wake: (() => void) | null = null;
  const stop = (): void => { stopped = true; wake?.(); };
  // `on`, not `once`, and never removed: the command returns straight into
  // process.exit, and a second Ctrl-C landing in between (a double tap, or a
  // terminal that repeats it) must not turn a clean exit into a 130 death.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (tty) out.write('\x1b[?25l'); // hide the cursor while redrawing
  try {
    while (!stopped) {
      let body: string;
      try {
        const s = await fetch();
        body = o.json ? `${JSON.stringify({ generatedAt: s.generatedAt, hosts: s.hosts })}\n` : renderTable(s.hosts, Date.now(), paint);
      } catch (err) {
        // Keep watching through a hub restart; say why the table is missing.
        const e = asBentoError(err);
        body = o.json ? `${JSON.stringify({ generatedAt: new Date().toISOString(), error: { code: e.code, message: e.message } })}\n` : `bento-hub status: ${e.message} [${e.code}]\n`;
      }
      if (stopped) break;
      if (tty) {
        const head = `bento-hub status · every ${o.intervalMs / 1000}s · ${new Date().toLocaleTimeString()} · Ctrl-C to quit\n\n`;
        out.write(`\x1b[H\x1b[2J${head}${body}`);
      } else {
        out.write(o.json ? body : `# ${new Date().toISOString()}\n${body}\n`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.intervalMs);
        wake = () => { clearTimeout(t); resolve(); };
      });
      wake = null;
    }
  } finally {
    if (tty) out.write('\x1b[?25h\n');
  }
  return 0;
}
