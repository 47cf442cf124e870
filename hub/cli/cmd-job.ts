// `bento-hub job ID [--follow] [--json]`: one job, from the hub's record and
// its stored output; with --follow, then its live output until it ends (a
// queued job: until its host connects and runs it). The hub joins the stored
// and the live lines by their seq, so nothing is missed or repeated.
import type { CommandSpec } from '../../common/platform/cli.js';
import { colour, drained, EXIT_DETACHED } from '../../common/platform/cli.js';
import type { AdminEvent, JobInfo } from '../../common/protocol/admin.js';
import { BentoError, ERRORS } from '../../common/protocol/errors.js';
import { isJobId } from '../../common/protocol/names.js';
import { formatBytes } from '../../common/platform/follower.js';
import { adminRequest } from '../admin/client.js';
import { withHub } from './util.js';

const FINAL = new Set(['success', 'failure', 'interrupted', 'rolled-back']);

export const jobCommand: CommandSpec = {
  name: 'job',
  usage: 'job ID [--follow] [--json] [--dir DIR]',
  summary: 'Show one job: its record and stored output; with --follow, then its live output until it ends.',
  details: [
    'The record (host, action, state, times, exit code, reason) goes to stderr, the output to stdout (stderr lines to stderr).',
    'A job whose output passed its cap (hub.json limits.jobOutputBytes) shows a line where the middle was cut; an old job',
    'whose output was dropped to keep its host under limits.hostOutputBytes says so.',
    '--follow waits for a queued job to start and a running one to end, printing its output as it comes (this is how to',
    'follow a `trigger --queue` job). A reader that falls far behind is told how many lines were skipped. Ctrl-C detaches.',
    'With --json, every event is printed as one JSON line ({"ev":"job",...}, {"ev":"output","seq":N,...}, {"ev":"end",...}).',
    'Exit status: 0 if the job succeeded, 1 (JOB_FAILED) if it failed, was interrupted or rolled back, 9 (JOB_NOT_FINISHED)',
    'without --follow for a job still queued or running, 5 (UNKNOWN_JOB) for an id the hub does not know (or pruned).',
  ].join('\n'),
  options: {
    follow: { type: 'boolean', help: 'follow the live output until the job ends' },
    json: { type: 'boolean', help: 'JSON lines output' },
  },
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }) {
    const id = positionals[0]!;
    if (!isJobId(id)) throw new BentoError('USAGE', `"${id}" is not a job id (8 to 64 of A-Z a-z 0-9 _ -)`);
    const json = values['json'] === true;
    const follow = values['follow'] === true;
    const c = colour(process.stderr);
    const { events, socket } = await withHub(values, (sock) => adminRequest(sock, { op: 'job', jobId: id, follow }));
    let job: JobInfo | null = null;
    let end: Extract<AdminEvent, { ev: 'end' }> | null = null;
    let detached = false;
    const onSigint = (): void => { detached = true; socket.destroy(); };
    process.once('SIGINT', onSigint);
    const note = (s: string): void => { if (!json) process.stderr.write(`${s}\n`); };
    try {
      for await (const e of events) {
        if (json) process.stdout.write(`${JSON.stringify(e)}\n`);
        switch (e.ev) {
          case 'job':
            job = e.job;
            note(describe(e.job, c));
            break;
          case 'output':
            if (!json) (e.stream === 'stderr' ? process.stderr : process.stdout).write(`${e.data}\n`);
            break;
          case 'trimmed':
          case 'skipped':
          case 'cut':
            note(c(33, `[bento] ${e.message}`));
            break;
          case 'started':
            note(`[bento] job ${id} started on ${e.host}`);
            break;
          case 'end':
            end = e;
            note(`[bento] ${e.outcome}${e.exitCode === null ? '' : ` (exit ${e.exitCode})`} after ${(e.durationMs / 1000).toFixed(1)}s${e.reason ? `: ${e.reason}` : ''}`);
            break;
          default:
            break;
        }
        await drained(process.stdout);
      }
    } catch (err) {
      if (!detached) throw err;
    } finally {
      process.off('SIGINT', onSigint);
    }
    if (detached) {
      process.stderr.write(`detached; the job goes on (\`bento-hub job ${id} --follow\` to follow it again)\n`);
      return EXIT_DETACHED;
    }
    const outcome = end?.outcome ?? job?.state;
    if (outcome === 'success') return 0;
    if (outcome !== undefined && FINAL.has(outcome)) return ERRORS.JOB_FAILED.exit;
    if (follow) throw new BentoError('INTERNAL', 'the hub ended the stream before the job ended');
    note(`[bento] not finished yet: \`bento-hub job ${id} --follow\` follows it`);
    return ERRORS.JOB_NOT_FINISHED.exit;
  },
};

function describe(j: JobInfo, c: (code: number, s: string) => string): string {
  const state = j.state === 'success' ? c(32, j.state) : FINAL.has(j.state) ? c(31, j.state) : c(33, j.state);
  const lines = [`job ${j.id} on ${j.host}: ${j.action}, ${state}${j.exitCode === null ? '' : ` (exit ${j.exitCode})`}${j.origin === 'agent' ? ' (started by the host)' : ''}`];
  const times = [`requested ${j.requestedAt}`, ...(j.startedAt ? [`started ${j.startedAt}`] : []), ...(j.endedAt ? [`ended ${j.endedAt}`] : [])];
  if (j.durationMs !== null) times.push(`took ${(j.durationMs / 1000).toFixed(1)}s`);
  lines.push(`  ${times.join(', ')}`);
  if (j.reason) lines.push(`  reason: ${j.reason}`);
  if (j.output?.dropped) lines.push(`  its stored output (${formatBytes(j.output.bytes)}) was dropped to keep ${j.host}'s jobs under limits.hostOutputBytes`);
  else if (j.output && j.output.trimmedLines > 0) lines.push(`  ${j.output.trimmedLines} lines (${formatBytes(j.output.trimmedBytes)}) were cut from the middle of its output (limits.jobOutputBytes)`);
  return lines.join('\n');
}
