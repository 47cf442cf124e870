// `bento-hub trigger`: push a rebuild and follow its output live.
import type { CommandSpec } from '../../common/platform/cli.js';
import { colour, drained, EXIT_DETACHED } from '../../common/platform/cli.js';
import { ACTIONS, isAction, type Outcome } from '../../common/protocol/messages.js';
import { BentoError, ERRORS, isErrorCode } from '../../common/protocol/errors.js';
import { adminRequest } from '../admin/client.js';
import { printTable, str, strs, withHub } from './util.js';
import { fanoutProgress } from './fanout-progress.js';

interface Row {
  host: string; jobId: string | null;
  /** 'detached' until the job's end arrives (what it stays if the admin detaches); 'queued' for a job not followed. */
  outcome: Outcome | 'rejected' | 'detached' | 'queued';
  exitCode: number | null; durationMs: number | null; note: string;
}

export const triggerCommand: CommandSpec = {
  name: 'trigger',
  usage: 'trigger (HOST... | --all | --tag T...) [--action ACTION] [--prebuilt] [--queue [--wait]] [--json] [--dir DIR]',
  summary: 'Run a rebuild on hosts now and stream its output live; exits 0 only if every job succeeded (or was queued).',
  details: [
    `ACTION is one of ${ACTIONS.join(', ')} (default switch). With several hosts each output line is prefixed by its host.`,
    'A host that is not connected is refused (exit 3) unless --queue, which queues the job to run when it connects and',
    'returns (exit 0) saying so, with the job id: `bento-hub job ID --follow` follows it. Add --wait to stay and follow',
    'it once the host connects (on a terminal the summary line names the hosts still awaited; Ctrl-C stops waiting, the job stays queued).',
    'On a terminal, a trigger to several hosts keeps a summary line ("3/5 done, 1 failed, 1 running (web3)") under the output.',
    'A trigger during a running job coalesces into one follow-up run. Ctrl-C detaches; the jobs go on.',
    'A terminal that falls far behind the output (`| less` left idle) is told how many lines the hub skipped for it;',
    '`bento-hub job ID` shows the whole stored log. In a cluster, lines of a job running at another hub that neither',
    'reach this hub nor are stored there within 5 s are announced the same way, and a job whose end this hub did not',
    'hear ends the stream once its record is final (checked every 2 s). When the hub holding a host answers neither the',
    'trigger nor its repeat in time (cluster.routeTimeoutMs each) and its job is not in the records, the host is reported',
    'TRIGGER_UNCONFIRMED (exit 10): the job may still run, under the job id the message names; check `bento-hub status HOST`',
    'before triggering again.',
    'With --json, every event is printed as one JSON line as it happens, then a final {"summary": [...]} line.',
    '--prebuilt: instead of evaluating and building its configuration, each host substitutes the exact system store path of',
    'its last successful `bento-hub build` (state/builds/HOST.json) from the hub\'s cache (through its tunnel when its agent',
    'has "cache" set, else from its own substituters) and activates it. Refused per host (NO_PREBUILT, exit 5) when there is',
    'no such build, or when publish.copyTo is set and the copy into the cache failed.',
  ].join('\n'),
  options: {
    all: { type: 'boolean', help: 'every registered host' },
    tag: { type: 'string', multiple: true, arg: 'TAG', help: 'hosts with this tag' },
    action: { type: 'string', arg: 'ACTION', help: 'switch (default), boot, test, build, dry-activate' },
    queue: { type: 'boolean', help: 'queue the job for hosts that are not connected (and return)' },
    wait: { type: 'boolean', help: 'also wait for queued hosts to connect, and follow their jobs' },
    prebuilt: { type: 'boolean', help: 'switch to the hub\'s last build for each host instead of rebuilding there' },
    json: { type: 'boolean', help: 'JSON lines output' },
  },
  positionals: { min: 0, max: Infinity },
  async run({ values, positionals }) {
    const action = str(values, 'action') ?? 'switch';
    if (!isAction(action)) throw new BentoError('USAGE', `--action must be one of ${ACTIONS.join(', ')}`);
    const tags = strs(values, 'tag');
    const all = values['all'] === true;
    if (!all && tags.length === 0 && positionals.length === 0) throw new BentoError('USAGE', 'name at least one HOST, or --all, or --tag');
    const json = values['json'] === true;
    const wait = values['wait'] === true;
    const c = colour(process.stdout);
    const { events, socket } = await withHub(values, (sock) => adminRequest(sock, {
      op: 'trigger', hosts: positionals, all, tags, action, queue: values['queue'] === true, follow: true,
      ...(wait ? { wait: true } : {}),
      ...(values['prebuilt'] === true ? { prebuilt: true } : {}),
    }));
    const rows = new Map<string, Row>();
    const progress = fanoutProgress({ enabled: !json, paint: colour(process.stderr) });
    // Host prefixes share one width, so the output of several hosts lines up.
    let width = Math.max(0, ...positionals.map((h) => h.length));
    /** Hosts waited for (--wait) whose job has not started: on Ctrl-C their job stays queued. */
    const awaited = new Set<string>();
    let detached = false;
    const onSigint = (): void => { detached = true; socket.destroy(); };
    process.once('SIGINT', onSigint);
    const out = (s: string): void => { process.stdout.write(s); };
    const note = (s: string): void => { if (!json) progress.print(process.stderr, `${s}\n`); };
    try {
      for await (const e of events) {
        if (json) out(`${JSON.stringify(e)}\n`);
        switch (e.ev) {
          case 'accepted': {
            width = Math.max(width, e.host.length);
            const followed = !e.offline || wait;
            rows.set(e.host, {
              host: e.host, jobId: e.jobId, outcome: followed ? 'detached' : 'queued', exitCode: null, durationMs: null,
              note: followed ? e.disposition : `queued: runs when ${e.host} connects`,
            });
            progress.set(e.host, !e.offline ? 'running' : wait ? 'waiting' : 'queued');
            if (e.offline && wait) awaited.add(e.host);
            const what = `${e.host}: ${e.action} job ${e.jobId} ${e.disposition}${e.storePath ? ` (prebuilt ${e.storePath})` : ''}`;
            if (!e.offline) note(what);
            else if (wait) note(`${what}; waiting for ${e.host} to connect (Ctrl-C stops waiting; the job stays queued)`);
            else note(`${what}; ${e.host} is not connected, the job runs when it connects (follow with: bento-hub job ${e.jobId} --follow)`);
            break;
          }
          case 'rejected':
            width = Math.max(width, e.host.length);
            rows.set(e.host, { host: e.host, jobId: null, outcome: 'rejected', exitCode: null, durationMs: null, note: `${e.code}: ${e.message}` });
            progress.set(e.host, 'failed');
            // Not a refusal: the holding hub did not answer and may run the job (hub/cluster/routing.ts).
            note(`${e.host}: ${e.code === 'TRIGGER_UNCONFIRMED' ? c(33, 'not confirmed') : c(31, 'refused')}: ${e.message}`);
            break;
          case 'started':
            awaited.delete(e.host);
            if (rows.get(e.host)?.outcome === 'detached') progress.set(e.host, 'running');
            break;
          case 'output':
            if (!json) {
              const prefix = rows.size > 1 ? `${c(36, e.host.padEnd(width))} | ` : '';
              progress.print(e.stream === 'stderr' ? process.stderr : process.stdout, `${prefix}${e.data}\n`);
            }
            break;
          case 'skipped':
            // This terminal fell behind the output (e.g. `| less` left idle): the hub skipped lines rather than hold them;
            // or lines of a job at another hub neither reached this one nor were stored in time (admin/follow-fill.ts).
            note(`${rows.size > 1 ? `${c(36, e.host.padEnd(width))} | ` : ''}${c(33, `[bento] ${e.message}`)}`);
            break;
          case 'cut':
            note(c(33, `[bento] ${e.message}`));
            break;
          case 'end': {
            const row = rows.get(e.host);
            if (row) Object.assign(row, { outcome: e.outcome, exitCode: e.exitCode, durationMs: e.durationMs, note: e.reason ?? '' });
            progress.set(e.host, e.outcome === 'success' ? 'success' : 'failed');
            break;
          }
          default:
            break;
        }
        await drained(process.stdout);
      }
    } catch (err) {
      if (!detached) throw err;
    } finally {
      process.off('SIGINT', onSigint);
      progress.stop();
    }
    const list = [...rows.values()].sort((a, b) => a.host.localeCompare(b.host));
    if (json) out(`${JSON.stringify({ summary: list })}\n`);
    else {
      process.stdout.write('\n');
      printTable(['HOST', 'OUTCOME', 'EXIT', 'DURATION', 'NOTE'], list.map((r) => [
        r.host, r.outcome === 'success' ? c(32, r.outcome) : r.outcome === 'queued' ? c(33, r.outcome)
          : r.note.startsWith('TRIGGER_UNCONFIRMED:') ? c(33, 'unconfirmed') : c(31, r.outcome), r.exitCode === null ? '-' : String(r.exitCode),
        r.durationMs === null ? '-' : `${(r.durationMs / 1000).toFixed(1)}s`, r.note]));
    }
    if (detached) {
      const running = list.filter((r) => r.outcome === 'detached' && !awaited.has(r.host)).map((r) => r.host);
      const queued = [...awaited].sort();
      const parts = [...(running.length ? [`the job goes on on ${running.join(', ')}`] : []), ...(queued.length ? [`the job stays queued for ${queued.join(', ')}`] : [])];
      process.stderr.write(`detached; ${parts.join('; ') || 'the job goes on'} (see \`bento-hub status\`)\n`);
      return EXIT_DETACHED;
    }
    if (list.some((r) => r.outcome !== 'success' && r.outcome !== 'rejected' && r.outcome !== 'queued')) return ERRORS.JOB_FAILED.exit;
    // A trigger that may still run is said first: a script that retries on failure must not trigger it again blindly.
    const rejected = list.find((r) => r.outcome === 'rejected' && r.note.startsWith('TRIGGER_UNCONFIRMED:')) ?? list.find((r) => r.outcome === 'rejected');
    if (rejected) {
      const code = rejected.note.split(':')[0]!;
      return isErrorCode(code) ? ERRORS[code].exit : 1;
    }
    return 0;
  },
};
