// How `bento-hub rollout` and `status` print rollouts: the plan, the one
// summary line, the final report, the list and the full view, and the exit
// status a finished follow returns (docs/rollouts.md).
import { ERRORS } from '../../common/protocol/errors.js';
import { rolloutLine, type RolloutDetail, type RolloutHostView, type RolloutSummary } from '../../common/protocol/rollout.js';
import { ago, duration } from '../status/format.js';

type Paint = (code: number, s: string) => string;

const STATE_COLOUR: Record<string, number> = { running: 36, halted: 31, aborted: 33, done: 32, healthy: 32, failed: 31, skipped: 33, cancelled: 33, waiting: 33, queued: 36 };

export function paintState(paint: Paint, s: string): string {
  return STATE_COLOUR[s] !== undefined ? paint(STATE_COLOUR[s]!, s) : s;
}

/** Printed once when a rollout starts: what will happen, in the admin's terms. */
export function planText(r: RolloutDetail): string {
  const sizes = r.plan.map((w) => w.size).join(', ');
  const tol = r.options.maxFailures === '0' ? 'halts at the first failed host' : `halts when a wave has more than ${r.options.maxFailures} failed hosts (per wave: ${r.plan.map((w) => w.maxFailures).join(', ')})`;
  const offline = r.offline === 'skip' ? 'offline hosts are skipped' : r.offline === 'queue' ? 'offline hosts get a queued job'
    : `offline hosts are waited for (at most ${duration(r.options.offlineTimeoutMs)})`;
  return [
    `rollout ${r.id}: ${r.action} on ${r.hosts} host${r.hosts === 1 ? '' : 's'} in ${r.waves} wave${r.waves === 1 ? '' : 's'} (${sizes}), at most ${r.maxInFlight} at once; it ${tol}; ${offline}${r.options.pauseAfterCanary ? '; pauses after the canary wave' : ''}.`,
    `canary: ${r.plan.length ? r.members.filter((m) => m.wave === 1).map((m) => m.host).join(', ') : '-'}`,
  ].join('\n');
}

/** The one line a terminal keeps updating, and `status` shows above its table. */
export function summaryLine(r: RolloutSummary, paint: Paint = (_c, s) => s): string {
  const head = `rollout ${r.id} (${r.action}) ${paintState(paint, r.state)}`;
  const tail = r.state === 'running' ? '' : r.reason ? `: ${r.reason}` : '';
  return `${head} · ${rolloutLine(r)}${tail}`;
}

export function hostLine(h: RolloutHostView, paint: Paint): string {
  const job = h.jobId ? ` (job ${h.jobId})` : '';
  return `${h.host}: ${paintState(paint, h.state)} in wave ${h.wave}${job}${h.reason ? `: ${h.reason}` : ''}`;
}

/** The hosts and waves of one rollout, as `rollout status ID` prints them. */
export function detailText(r: RolloutDetail, paint: Paint, now = Date.now()): string {
  const out = [summaryLine(r, paint), `started ${ago(r.createdAt, now)} ago${r.endedAt ? `, ended ${ago(r.endedAt, now)} ago` : ''}; at most ${r.maxInFlight} at once; offline hosts: ${r.offline}`, ''];
  const rows = r.members.map((h) => [String(h.wave), h.host, h.state, h.jobId ?? '-', h.health ?? '-', h.since ? ago(h.since, now) : '-', h.reason ?? '']);
  out.push(table(['WAVE', 'HOST', 'STATE', 'JOB', 'HEALTH', 'SINCE', 'REASON'], rows, 2, (s) => paintState(paint, s)));
  out.push(`\nwaves: ${r.plan.map((w) => `${w.wave}: ${w.counts.healthy}/${w.size} healthy, tolerates ${w.maxFailures} failed`).join(' · ')}`);
  return `${out.join('\n')}\n${nextSteps(r)}`;
}

/** Every kept rollout, newest first. */
export function listText(rs: RolloutSummary[], paint: Paint, now = Date.now()): string {
  if (rs.length === 0) return 'no rollouts (start one with `bento-hub rollout --all`)\n';
  const rows = rs.map((r) => [r.id, r.state, r.action, `${r.wave}/${r.waves}`, String(r.hosts), String(r.counts.healthy), String(r.counts.failed), ago(r.createdAt, now), r.reason ?? '']);
  return `${table(['ID', 'STATE', 'ACTION', 'WAVE', 'HOSTS', 'HEALTHY', 'FAILED', 'STARTED', 'NOTE'], rows, 1, (s) => paintState(paint, s))}\n`;
}

/** After a follow ends: what happened and what to do next. */
export function finalReport(r: RolloutDetail, paint: Paint): string {
  const out = [summaryLine(r, paint)];
  const notable = r.members.filter((h) => h.state === 'failed' || h.state === 'skipped' || h.state === 'cancelled' || h.state === 'queued' || h.state === 'running');
  for (const h of notable.slice(0, 50)) out.push(`  ${hostLine(h, paint)}`);
  if (notable.length > 50) out.push(`  ... and ${notable.length - 50} more (bento-hub rollout status ${r.id})`);
  return `${out.join('\n')}\n${nextSteps(r)}`;
}

function nextSteps(r: RolloutSummary): string {
  if (r.state === 'halted') return `next: fix the cause (bento-hub deploy ...), then \`bento-hub rollout resume ${r.id} --retry-failed\`, or \`bento-hub rollout resume ${r.id}\` to go on past the failures, or \`bento-hub rollout abort ${r.id}\`\n`;
  if (r.state === 'running') return `follow: bento-hub rollout status ${r.id}; stop: bento-hub rollout abort ${r.id}\n`;
  return '';
}

/** The exit status of a follow that saw the rollout stop. */
export function exitFor(r: RolloutSummary): number {
  if (r.state === 'halted') return ERRORS.ROLLOUT_HALTED.exit;
  if (r.state === 'aborted') return ERRORS.ROLLOUT_ABORTED.exit;
  if (r.state === 'done' && r.counts.failed > 0) return ERRORS.JOB_FAILED.exit;
  return 0;
}

/** Columns padded on the text before colour is added (so colour codes never shift them). */
function table(head: string[], rows: string[][], stateCol: number, colourState: (s: string) => string): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], colour: boolean): string => cells.map((c, i) => {
    const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
    return colour && i === stateCol ? padded.replace(c, colourState(c)) : padded;
  }).join('  ').trimEnd();
  return [line(head, false), ...rows.map((r) => line(r, true))].join('\n');
}
