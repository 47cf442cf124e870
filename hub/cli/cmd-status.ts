// `bento-hub status [--json] [--watch]`: one row per registered host with
// its state (docs/status.md). --watch redraws in place on a terminal until
// Ctrl-C; elsewhere it appends one snapshot per refresh.
import type { CommandSpec } from '../../common/platform/cli.js';
import { colour } from '../../common/platform/cli.js';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import type { AdminEvent } from '../../common/protocol/admin.js';
import { adminCall } from '../admin/client.js';
import { renderTable } from '../status/format.js';
import { str, withHub } from './util.js';
import { summaryLine } from './rollout-report.js';

type StatusEvent = Extract<AdminEvent, { ev: 'status' }>;

export const MIN_INTERVAL_S = 0.5;
export const MAX_INTERVAL_S = 60;

export const statusCommand: CommandSpec = {
  name: 'status',
  usage: 'status [HOST...] [--json] [--watch [--interval SECONDS]] [--dir DIR]',
  summary: 'Per-host state table: connection, carrier, published and applied version, system and generation, state, running or last job (and a queued one), when and how long.',
  details: [
    'States: never connected, new machine, up to date, nothing published, rebuild pending, sync pending, failing, rolled back,',
    'auto updated, running, offline (exact rules in docs/status.md). Hosts that need attention are listed first and get a note',
    'under the table; --json keeps the hosts in name order.',
    `--watch refreshes every --interval seconds (default 2, ${MIN_INTERVAL_S}..${MAX_INTERVAL_S}); on a terminal it redraws in place,`,
    'otherwise it appends a snapshot per refresh (with --json: one JSON document per line). Ctrl-C ends it (exit 0).',
    'HOST... shows only those hosts (UNKNOWN_HOST, exit 5, for a name that is not registered).',
  ].join('\n'),
  options: {
    json: { type: 'boolean', help: 'print JSON ({ "generatedAt", "hosts": [...], "rollouts": [...] }, stable field names)' },
    watch: { type: 'boolean', help: 'keep refreshing until Ctrl-C' },
    interval: { type: 'string', arg: 'SECONDS', help: `refresh period for --watch (default 2, ${MIN_INTERVAL_S}..${MAX_INTERVAL_S})` },
  },
  positionals: { min: 0, max: Infinity },
  async run({ values, positionals }) {
    const json = values['json'] === true;
    const fetch = async (): Promise<StatusEvent> => only(await withHub(values, (socket) => adminCall(socket, { op: 'status', gzip: true }, 'status')), positionals);
    if (values['watch'] !== true) {
      if (values['interval'] !== undefined) throw new BentoError('USAGE', '--interval only applies with --watch');
      const s = await fetch();
      process.stdout.write(json ? `${JSON.stringify(statusJson(s), null, 2)}\n` : render(s, colour(process.stdout)));
      return 0;
    }
    const intervalS = Number(str(values, 'interval') ?? '2');
    if (!Number.isFinite(intervalS) || intervalS < MIN_INTERVAL_S || intervalS > MAX_INTERVAL_S) {
      throw new BentoError('USAGE', `--interval must be a number of seconds in ${MIN_INTERVAL_S}..${MAX_INTERVAL_S}`);
    }
    return watch(fetch, { json, intervalMs: Math.round(intervalS * 1000) });
  },
};

/** `rollouts`: running and halted rollouts (docs/rollouts.md), [] from a hub that has none to say. */
function statusJson(s: StatusEvent): { generatedAt: string; hosts: StatusEvent['hosts']; rollouts: NonNullable<StatusEvent['rollouts']> } {
  return { generatedAt: s.generatedAt, hosts: s.hosts, rollouts: s.rollouts ?? [] };
}

/** One line per running or halted rollout above the table. */
function render(s: StatusEvent, paint: (code: number, s: string) => string): string {
  const lines = (s.rollouts ?? []).map((r) => `${summaryLine(r, paint)}\n`).join('');
  return `${lines}${lines ? '\n' : ''}${renderTable(s.hosts, Date.now(), paint)}`;
}

/** The named hosts' rows (all without names), in the hub's order. */
function only(s: StatusEvent, names: string[]): StatusEvent {
  if (names.length === 0) return s;
  const unknown = names.filter((n) => !s.hosts.some((h) => h.name === n));
  if (unknown.length) throw new BentoError('UNKNOWN_HOST', `no host ${unknown.map((n) => `"${n}"`).join(', ')} in the registry (\`bento-hub hosts\` lists them)`);
  return { ...s, hosts: s.hosts.filter((h) => names.includes(h.name)) };
}

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
        body = o.json ? `${JSON.stringify(statusJson(s))}\n` : render(s, paint);
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
