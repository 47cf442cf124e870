// `bento-hub rollout`: a staged rollout (docs/rollouts.md). The hub runs it;
// this command starts, resumes, aborts or shows one, and follows it: on a
// terminal one summary line updates in place, with a line of its own for each
// wave and each host that failed; Ctrl-C detaches and the rollout goes on.
import type { CommandSpec, CommandContext } from '../../common/platform/cli.js';
import { colour, EXIT_DETACHED } from '../../common/platform/cli.js';
import { ACTIONS, isAction } from '../../common/protocol/messages.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { AdminRequest } from '../../common/protocol/admin.js';
import { OFFLINE_POLICIES, isRolloutId, type OfflinePolicy, type RolloutDetail, type RolloutSummary } from '../../common/protocol/rollout.js';
import { adminCall, adminRequest, type AdminConnection } from '../admin/client.js';
import { DEFAULT_MAX_IN_FLIGHT, DEFAULT_OFFLINE_TIMEOUT, rolloutOptions } from '../admin/rollout-ops.js';
import { detailText, exitFor, finalReport, hostLine, listText, planText, summaryLine } from './rollout-report.js';
import { printJson, str, strs, withHub } from './util.js';

const SUBCOMMANDS = ['start', 'resume', 'abort', 'status'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

/** Options each form accepts (besides --json and --dir). */
const ALLOWED: Record<Sub, string[]> = {
  start: ['all', 'tag', 'action', 'canary', 'waves', 'max-in-flight', 'max-failures', 'offline', 'offline-timeout', 'pause-after-canary', 'detach'],
  resume: ['retry-failed', 'detach'],
  abort: [],
  status: [],
};

export const rolloutCommand: CommandSpec = {
  name: 'rollout',
  usage: [
    'rollout [start] (HOST... | --all | --tag T...) [--action ACTION] [--canary N|P% | --waves LIST] [--max-in-flight N|P%]',
    '          [--max-failures N|P%] [--offline skip|queue|wait [--offline-timeout DURATION]] [--pause-after-canary] [--detach] [--json] [--dir DIR]',
    '       rollout resume ID [--retry-failed] [--detach] [--json] [--dir DIR]',
    '       rollout abort ID [--json] [--dir DIR]',
    '       rollout status [ID] [--json] [--dir DIR]',
  ].join('\n'),
  summary: 'Roll a change over hosts in waves: a canary, then growing waves, halting when a wave fails; resumable, and run by the hub.',
  details: [
    'The hub runs the rollout (it goes on if this command ends, and after a hub restart). A host is healthy once its job succeeded:',
    'for switch/test that is after its rollback window closed with the switch kept, and after its own health check passed where',
    'its agent has one (healthCommand). Waves: --canary N|P% (default 1) then each wave twice the one before, or --waves with',
    'cumulative steps such as 1,10%,50%,100% (hosts left after the last step make one more wave). Named HOSTs go first, in the',
    `order given (name your canaries first), then the other selected hosts by name. --max-in-flight limits running jobs (default ${DEFAULT_MAX_IN_FLIGHT}).`,
    'A wave with more failed hosts than --max-failures (default 0; a percentage is of the wave, rounded down) halts the rollout:',
    'no further host starts; running jobs finish. Offline hosts at their turn: --offline skip (default), queue (their job runs when',
    `they connect; the wave does not wait), or wait (at most --offline-timeout, default ${DEFAULT_OFFLINE_TIMEOUT}, then the host counts as failed).`,
    '`resume ID` goes on past the failures seen (--retry-failed runs those hosts again); `abort ID` stops it for good.',
    'A host named start, resume, abort or status is rolled out with `rollout start NAME`.',
    'Exit status of a followed rollout: 0 done with every host healthy (or skipped/queued as asked), 1 done with tolerated',
    'failures, 7 halted (ROLLOUT_HALTED), 8 aborted (ROLLOUT_ABORTED), 130 detached by Ctrl-C; --detach returns once it started.',
    'With --json every event is printed as one JSON line; the last one is the final {"ev":"rollout",...}.',
  ].join('\n'),
  options: {
    all: { type: 'boolean', help: 'every registered host' },
    tag: { type: 'string', multiple: true, arg: 'TAG', help: 'hosts with this tag' },
    action: { type: 'string', arg: 'ACTION', help: 'switch (default), boot, test, build, dry-activate' },
    canary: { type: 'string', arg: 'N|P%', help: 'hosts in the first wave (default 1); later waves double' },
    waves: { type: 'string', arg: 'LIST', help: 'cumulative wave steps instead, e.g. 1,10%,50%,100%' },
    'max-in-flight': { type: 'string', arg: 'N|P%', help: `jobs running at once (default ${DEFAULT_MAX_IN_FLIGHT})` },
    'max-failures': { type: 'string', arg: 'N|P%', help: 'failed hosts a wave tolerates before the rollout halts (default 0)' },
    offline: { type: 'string', arg: 'POLICY', help: `what to do with a host offline at its turn: ${OFFLINE_POLICIES.join(', ')} (default skip)` },
    'offline-timeout': { type: 'string', arg: 'DURATION', help: `with --offline wait: how long, e.g. 90s, 10m (default ${DEFAULT_OFFLINE_TIMEOUT})` },
    'pause-after-canary': { type: 'boolean', help: 'halt once the canary wave is healthy, until `rollout resume`' },
    'retry-failed': { type: 'boolean', help: 'resume: run the failed hosts again' },
    detach: { type: 'boolean', help: 'return once started or resumed; do not follow' },
    json: { type: 'boolean', help: 'JSON output' },
  },
  positionals: { min: 0, max: Infinity },
  async run(ctx) {
    const { values } = ctx;
    const first = ctx.positionals[0];
    const sub: Sub = (SUBCOMMANDS as readonly string[]).includes(first ?? '') ? first as Sub : 'start';
    const args = sub === 'start' && first !== 'start' ? ctx.positionals : ctx.positionals.slice(1);
    for (const k of Object.keys(values)) {
      if (values[k] !== undefined && k !== 'json' && k !== 'dir' && !ALLOWED[sub].includes(k)) throw new BentoError('USAGE', `--${k} does not apply to \`rollout ${sub}\``);
    }
    const json = values['json'] === true;
    // Through withHub: a --dir that is no fleet says FLEET_NOT_INITIALIZED, not "hub not running".
    const call = <E extends 'rollout' | 'rollouts'>(req: AdminRequest, want: E) => withHub(values, (socket) => adminCall(socket, req, want));
    if (sub === 'status') {
      if (args.length > 1) throw new BentoError('USAGE', 'rollout status takes at most one ID');
      if (args.length === 0) {
        const { rollouts } = await call({ op: 'rollout.status' }, 'rollouts');
        if (json) printJson({ rollouts });
        else process.stdout.write(listText(rollouts, colour(process.stdout)));
        return 0;
      }
      const { rollout } = await call({ op: 'rollout.status', id: rolloutId(args[0]) }, 'rollout');
      if (json) printJson({ rollout });
      else process.stdout.write(detailText(rollout, colour(process.stdout)));
      return 0;
    }
    if (sub === 'abort') {
      if (args.length !== 1) throw new BentoError('USAGE', 'rollout abort takes one ID');
      const { rollout } = await call({ op: 'rollout.abort', id: rolloutId(args[0]) }, 'rollout');
      if (json) printJson({ rollout });
      else process.stdout.write(`${finalReport(rollout, colour(process.stdout))}jobs already running finish; their results still show in \`bento-hub rollout status ${rollout.id}\`\n`);
      return 0;
    }
    const detach = values['detach'] === true;
    let req: AdminRequest;
    if (sub === 'resume') {
      if (args.length !== 1) throw new BentoError('USAGE', 'rollout resume takes one ID');
      req = { op: 'rollout.resume', id: rolloutId(args[0]), follow: !detach, ...(values['retry-failed'] === true ? { retryFailed: true } : {}) };
    } else {
      req = startRequest(values, args, !detach);
    }
    return follow(await withHub(values, (socket) => adminRequest(socket, req)), { json, detach });
  },
};

function rolloutId(s: string | undefined): string {
  if (!isRolloutId(s)) throw new BentoError('UNKNOWN_ROLLOUT', `${JSON.stringify(s ?? '')} is not a rollout id (they look like r-k3m9x2ab; see \`bento-hub rollout status\`)`);
  return s;
}

function startRequest(values: CommandContext['values'], hosts: string[], follow: boolean): Extract<AdminRequest, { op: 'rollout.start' }> {
  const action = str(values, 'action') ?? 'switch';
  if (!isAction(action)) throw new BentoError('USAGE', `--action must be one of ${ACTIONS.join(', ')}`);
  const tags = strs(values, 'tag');
  const all = values['all'] === true;
  if (!all && tags.length === 0 && hosts.length === 0) throw new BentoError('USAGE', 'name at least one HOST, or --all, or --tag');
  const offline = str(values, 'offline');
  if (offline !== undefined && !(OFFLINE_POLICIES as readonly string[]).includes(offline)) throw new BentoError('USAGE', `--offline must be one of ${OFFLINE_POLICIES.join(', ')}`);
  const opt = <K extends string>(k: K, v: string | undefined): Record<K, string> | Record<string, never> => (v === undefined ? {} : { [k]: v } as Record<K, string>);
  const req: Extract<AdminRequest, { op: 'rollout.start' }> = {
    op: 'rollout.start', hosts, all, tags, action, follow,
    ...opt('canary', str(values, 'canary')), ...opt('maxInFlight', str(values, 'max-in-flight')), ...opt('maxFailures', str(values, 'max-failures')),
    ...opt('offlineTimeout', str(values, 'offline-timeout')),
    ...(str(values, 'waves') !== undefined ? { waves: str(values, 'waves')!.split(',').map((w) => w.trim()) } : {}),
    ...(offline ? { offline: offline as OfflinePolicy } : {}),
    ...(values['pause-after-canary'] === true ? { pauseAfterCanary: true } : {}),
  };
  rolloutOptions(req); // the hub checks again; refusing here saves a round trip and says it the same way
  return req;
}

async function follow(conn: AdminConnection, o: { json: boolean; detach: boolean }): Promise<number> {
  const { events, socket: sock } = conn;
  const out = process.stdout;
  const tty = out.isTTY === true && !o.json;
  const paint = colour(out);
  let last: RolloutDetail | null = null;
  let summary: RolloutSummary | null = null;
  let wave = 0;
  let drawn = false;
  let shown = 'running';
  let detached = false;
  const onSigint = (): void => { detached = true; sock.destroy(); };
  process.once('SIGINT', onSigint);
  // On a terminal the summary line is redrawn in place; other lines are printed above it.
  const say = (line: string): void => {
    if (o.json) return;
    out.write(tty && drawn ? `\r\x1b[K${line}\n` : `${line}\n`);
    drawn = false;
  };
  const draw = (): void => {
    if (!tty || !summary) return;
    // Cut to the terminal's width: a wrapped line would not be redrawn in place. (A pty with no size says 0.)
    const line = summaryLine(summary, paint);
    out.write(`\r\x1b[K${out.columns ? line.slice(0, Math.max(20, out.columns - 1)) : line}`);
    drawn = true;
  };
  const newWave = (s: RolloutSummary): void => {
    if (s.wave !== wave && s.state === 'running') say(`wave ${s.wave}/${s.waves} begins`);
    wave = s.wave;
  };
  try {
    for await (const e of events) {
      if (o.json) out.write(`${JSON.stringify(e)}\n`);
      if (e.ev === 'rollout') {
        const final = last !== null;
        if (!last) say(planText(e.rollout));
        last = e.rollout;
        newWave(e.rollout);
        if (final) break; // the final report follows
        summary = e.rollout;
      } else if (e.ev === 'rollout.progress') {
        summary = e.rollout;
        for (const h of e.changed) if (h.state === 'failed') say(hostLine(h, paint));
        newWave(e.rollout);
        // Halted or aborted while jobs still run: said once, the report comes when they are done.
        if (e.rollout.state !== 'running' && e.rollout.state !== shown) say(`${summaryLine(e.rollout, paint)} (waiting for ${e.rollout.counts.running} running job${e.rollout.counts.running === 1 ? '' : 's'})`);
        shown = e.rollout.state;
      }
      draw();
    }
  } catch (err) {
    if (!detached) throw err;
  } finally {
    process.off('SIGINT', onSigint);
    sock.destroy();
    if (tty && drawn) out.write('\r\x1b[K'); // the summary line gives way to the report
  }
  if (!last) throw new BentoError('INTERNAL', 'the hub closed the connection without answering');
  if (detached) {
    if (!o.json) process.stderr.write(`detached; rollout ${last.id} goes on in the hub: bento-hub rollout status ${last.id}\n`);
    return EXIT_DETACHED;
  }
  if (last.state === 'running') {
    if (o.detach) {
      if (!o.json) process.stderr.write(`rollout ${last.id} goes on in the hub: bento-hub rollout status ${last.id}\n`);
      return 0;
    }
    // A followed stream ends with the rollout stopped; ending while it runs means the hub went away.
    throw new BentoError('HUB_NOT_RUNNING', `lost the hub while following; rollout ${last.id} is kept in the hub's state and goes on when it runs again (bento-hub rollout status ${last.id})`);
  }
  if (!o.json) out.write(finalReport(last, paint));
  return exitFor(last);
}
