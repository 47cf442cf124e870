// `bento-client upgrade`: ask the running agent, over its local unix socket,
// to run the job a hub trigger runs, and follow the output in the terminal.
// The exit status is the job's: 0 only when it succeeded.
import http from 'node:http';
import type { CommandSpec } from '../../common/platform/cli.js';
import { colour, EXIT_DETACHED } from '../../common/platform/cli.js';
import { readSse } from '../../common/platform/web-sse.js';
import { BentoError, ERRORS } from '../../common/protocol/errors.js';
import { ACTIONS, isAction } from '../../common/protocol/messages.js';
import { loadClientConfig } from '../config.js';
import { DEFAULT_LOCAL_SOCKET } from './settings.js';

function request(socketPath: string, method: string, path: string, body?: unknown): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({
      socketPath, method, path,
      headers: { Host: 'localhost', Accept: 'application/json', ...(data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}) },
    }, resolve);
    req.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new BentoError('AGENT_NOT_RUNNING', `no agent answers on ${socketPath} (is bento-client running, with "localPage.socket" set?)`));
      } else if (err.code === 'EACCES') {
        reject(new BentoError('FORBIDDEN', `permission denied on ${socketPath}: run as root, or as a member of "localPage.socketGroup"`));
      } else {
        reject(new BentoError('AGENT_NOT_RUNNING', `${socketPath}: ${err.message}`));
      }
    });
    req.end(data);
  });
}

async function readJson(res: http.IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  res.setEncoding('utf8');
  for await (const chunk of res as AsyncIterable<string>) text += chunk;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { error: text.trim() || `HTTP ${res.statusCode}` };
  }
}

export const upgradeCommand: CommandSpec = {
  name: 'upgrade',
  usage: 'upgrade [--action ACTION] [--socket PATH | --config FILE] [--json]',
  summary: 'Run the job a hub trigger runs, right now on this host, and follow its output; exits 0 only if it succeeded.',
  details: [
    `Talks to the running agent over its local unix socket (default ${DEFAULT_LOCAL_SOCKET}, or "localPage.socket" of --config).`,
    `ACTION is one of ${ACTIONS.join(', ')} (default switch). During a running job the request waits as its follow-up`,
    'run (a hub job waiting too runs first, and serves the request if it has the same action); the output shown is',
    'that of the run that serves it. The hub records the job like a triggered one. Ctrl-C detaches (exit 130);',
    'the job goes on. With --json every event is one JSON line, then {"summary": {...}}.',
  ].join('\n'),
  options: {
    action: { type: 'string', arg: 'ACTION', help: 'switch (default), boot, test, build, dry-activate' },
    socket: { type: 'string', arg: 'PATH', help: `the agent's local socket (default ${DEFAULT_LOCAL_SOCKET})` },
    json: { type: 'boolean', help: 'JSON lines output' },
  },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const action = typeof values['action'] === 'string' ? values['action'] : 'switch';
    if (!isAction(action)) throw new BentoError('USAGE', `--action must be one of ${ACTIONS.join(', ')}`);
    let socket = typeof values['socket'] === 'string' ? values['socket'] : undefined;
    if (!socket && typeof values['config'] === 'string') {
      const cfg = await loadClientConfig(values['config']);
      if (!cfg.localPage?.socket) throw new BentoError('AGENT_NOT_RUNNING', `${values['config']} turns the local socket off ("localPage.socket": null)`);
      socket = cfg.localPage.socket;
    }
    socket ??= DEFAULT_LOCAL_SOCKET;
    const json = values['json'] === true;
    const c = colour(process.stderr);
    const say = (s: string): void => { if (!json) process.stderr.write(`${s}\n`); };
    const emit = (o: unknown): void => { if (json) process.stdout.write(`${JSON.stringify(o)}\n`); };

    const started = await request(socket, 'POST', '/api/upgrade', { action });
    const accepted = await readJson(started);
    if (started.statusCode !== 202 || typeof accepted['jobId'] !== 'string') {
      throw new BentoError('FORBIDDEN', `the agent refused: ${String(accepted['error'] ?? `HTTP ${started.statusCode}`)}`);
    }
    const jobId = accepted['jobId'];
    emit({ ev: 'accepted', jobId, disposition: accepted['disposition'], action });
    say(`${action} job ${jobId} ${accepted['disposition'] === 'queued' ? 'queued after the running job' : 'started'}`);

    const events = await request(socket, 'GET', `/api/jobs/${jobId}/events`);
    if (events.statusCode !== 200) throw new BentoError('INTERNAL', `cannot follow job ${jobId}: HTTP ${events.statusCode}`);
    let detached = false;
    const onSigint = (): void => { detached = true; events.destroy(); };
    process.once('SIGINT', onSigint);
    let end: Record<string, unknown> | null = null;
    try {
      for await (const e of readSse(events)) {
        const d = JSON.parse(e.data) as Record<string, unknown>;
        emit({ ev: e.event, ...d });
        if (json) {
          if (e.event === 'end') end = d;
          continue;
        }
        // stderr and the agent's notes ("bento: ...") go to stderr, as before notes had a stream of their own.
        if (e.event === 'line') (d['stream'] === 'stdout' ? process.stdout : process.stderr).write(`${String(d['data'])}\n`);
        else if (e.event === 'note') say(String(d['text']));
        else if (e.event === 'queued') say('waiting for the running job to finish…');
        else if (e.event === 'end') end = d;
      }
    } catch (err) {
      if (!detached) throw err;
    } finally {
      process.off('SIGINT', onSigint);
    }
    if (detached) {
      say(`detached; job ${jobId} goes on (see http://127.0.0.1:51337/ or \`bento-hub status\`)`);
      return EXIT_DETACHED;
    }
    if (!end) throw new BentoError('AGENT_NOT_RUNNING', `the agent went away before job ${jobId} ended`);
    const ok = end['outcome'] === 'success';
    const secs = typeof end['durationMs'] === 'number' ? ` in ${(end['durationMs'] / 1000).toFixed(1)} s` : '';
    emit({ summary: { jobId: end['jobId'] ?? jobId, outcome: end['outcome'], exitCode: end['exitCode'], durationMs: end['durationMs'], reason: end['reason'] ?? null } });
    say(`${ok ? c(32, String(end['outcome'])) : c(31, String(end['outcome']))}${end['exitCode'] !== null && end['exitCode'] !== undefined ? ` (exit ${String(end['exitCode'])})` : ''}${secs}${end['reason'] ? `: ${String(end['reason'])}` : ''}`);
    return ok ? 0 : ERRORS.JOB_FAILED.exit;
  },
};
