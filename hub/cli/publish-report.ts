// The frame `build` and `deploy` share on the command line: hub.json's
// publish settings, --jobs, a progress display on stderr while hosts are
// processed, then the warnings and either JSON or a table of result rows.
import { colour, type OptionSpec } from '../../common/platform/cli.js';
import { BentoError } from '../../common/protocol/errors.js';
import { loadHubConfig } from '../fleet/hub-config.js';
import { fleetPaths } from '../fleet/paths.js';
import { DEFAULT_PUBLISH_SETTINGS, type PublishSettings } from '../publish/settings.js';
import type { HostRow, Progress } from '../publish/run.js';
import { requireFleet } from './cmd-fleet.js';
import { fleetDir, printJson, printTable, str } from './util.js';

export async function publishSettings(dir: string): Promise<PublishSettings> {
  const p = fleetPaths(dir);
  await requireFleet(p.hubConfig);
  return (await loadHubConfig(p.hubConfig)).publish ?? { ...DEFAULT_PUBLISH_SETTINGS };
}

/** The options `build` and `deploy` share; runWithReport reads them. */
export const REPORT_OPTIONS: Record<string, OptionSpec> = {
  jobs: { type: 'string', arg: 'N', help: 'hosts built at once (default hub.json publish.buildJobs)' },
  json: { type: 'boolean', help: 'print {"hosts": [...]} as JSON' },
};

export function jobsOption(values: Record<string, unknown>): number | undefined {
  const j = str(values as never, 'jobs');
  if (j === undefined) return undefined;
  if (!/^\d{1,3}$/.test(j) || Number(j) < 1) throw new BentoError('USAGE', '--jobs must be a number >= 1');
  return Number(j);
}

/**
 * Progress on stderr. On a terminal: one live status line (hosts in flight,
 * elapsed time, last output line) under the rows of finished hosts. Elsewhere:
 * one plain line per phase change, so logs and CI output stay readable.
 */
export function progressDisplay(verb: string, total: number | null, quiet: boolean): Progress & { stop(): void } {
  const err = process.stderr;
  const tty = err.isTTY === true && !quiet;
  const c = colour(err);
  const active = new Map<string, { phase: string; since: number; last: string }>();
  let done = 0;
  let timer: NodeJS.Timeout | null = null;
  const width = (): number => Math.max(40, (err.columns ?? 100) - 1);
  const render = (): void => {
    if (!tty) return;
    const now = Date.now();
    const parts = [...active.entries()].map(([h, a]) => `${h} ${a.phase} ${((now - a.since) / 1000).toFixed(0)}s`);
    const last = [...active.values()].map((a) => a.last).filter(Boolean).pop() ?? '';
    let line = `[${done}${total === null ? ' done' : `/${total}`}] ${parts.join(', ')}${last ? ` | ${last}` : ''}`;
    if (line.length > width()) line = `${line.slice(0, width() - 1)}…`;
    err.write(`\r\x1b[K${c(2, line)}`);
  };
  if (tty) timer = setInterval(render, 250);
  return {
    phase(host, phase) {
      const a = active.get(host);
      active.set(host, { phase, since: a?.since ?? Date.now(), last: '' });
      if (!tty && !quiet) err.write(`${host}: ${phase}\n`);
      render();
    },
    line(host, line) {
      const a = active.get(host);
      if (a) a.last = line.replace(/[^\x20-\x7e]/g, '').trim();
    },
    done(row: HostRow) {
      active.delete(row.host);
      done++;
      const ok = row.result === 'ok' || row.result === 'updated' || row.result === 'no-changes';
      const what = row.result === 'updated' ? `updated ${row.hash}` : row.result === 'no-changes' ? 'no changes' : row.result;
      if (tty) err.write(`\r\x1b[K${row.host}: ${ok ? c(32, what) : c(31, what)} (${(row.durationMs / 1000).toFixed(1)}s)\n`);
      else if (!quiet) err.write(`${row.host}: ${what} (${(row.durationMs / 1000).toFixed(1)}s)\n`);
      render();
    },
    stop() {
      if (timer) clearInterval(timer);
      if (tty) err.write('\r\x1b[K');
    },
  };
}

/**
 * The frame build and deploy share: progress on stderr while hosts are
 * processed, warnings, then either JSON ({"hosts", "warnings"}) or a table.
 */
export async function runWithReport<Row extends { host: string }>(opts: {
  verb: string;
  values: Record<string, unknown>;
  hosts: string[];
  run: (base: { fleetDir: string; settings: PublishSettings; hosts: string[]; jobs: number | undefined; progress: Progress }) => Promise<{ rows: Row[]; warnings: string[] }>;
  head: string[];
  row: (r: Row, c: (code: number, s: string) => string) => string[];
}): Promise<Row[]> {
  const dir = fleetDir(opts.values as Parameters<typeof fleetDir>[0]);
  const settings = await publishSettings(dir);
  const json = opts.values['json'] === true;
  // Without named hosts the count is known only once hosts/ is read: no total then, rather than a wrong one.
  const progress = progressDisplay(opts.verb, opts.hosts.length || null, json);
  let res;
  try {
    res = await opts.run({ fleetDir: dir, settings, hosts: opts.hosts, jobs: jobsOption(opts.values), progress });
  } finally {
    progress.stop();
  }
  for (const w of res.warnings) process.stderr.write(`warning: ${w}\n`);
  if (json) printJson({ hosts: res.rows, warnings: res.warnings });
  else if (res.rows.length === 0) process.stdout.write('no host configurations under hosts/\n');
  else {
    const c = colour(process.stdout);
    printTable(opts.head, res.rows.map((r) => opts.row(r, c)));
  }
  return res.rows;
}

export function oneLine(s: string, max = 160): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}
