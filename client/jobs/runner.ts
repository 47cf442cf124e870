// Run one rebuild with execa and hand its output over line by line as it
// comes, stdout and stderr kept apart. Very long lines are cut into chunks so
// one runaway line can never exceed the protocol's message limit.
import { execa } from 'execa';
import type { Readable } from 'node:stream';

export const MAX_CHUNK = 16 * 1024;

export interface RunOptions {
  argv: string[];
  env: Record<string, string>;
  onLine(stream: 'stdout' | 'stderr', line: string): void;
  signal?: AbortSignal;
  /** Working directory (nixos-rebuild build leaves ./result there); default the agent's. */
  cwd?: string;
}

export interface RunResult {
  exitCode: number | null;
  signal: string | null;
  /** Set when the command could not be started at all. */
  spawnError: string | null;
}

export async function runRebuild(opts: RunOptions): Promise<RunResult> {
  const [cmd, ...args] = opts.argv;
  const child = execa(cmd!, args, {
    env: opts.env,
    reject: false,
    stdin: 'ignore',
    buffer: false,
    cancelSignal: opts.signal,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    forceKillAfterDelay: 10_000,
  });
  const pumps = [pump(child.stdout, 'stdout', opts.onLine), pump(child.stderr, 'stderr', opts.onLine)];
  const res = await child;
  await Promise.all(pumps);
  const spawnError = res.failed && res.exitCode === undefined && !res.signal ? (res.shortMessage ?? 'failed to start') : null;
  return { exitCode: res.exitCode ?? null, signal: res.signal ?? null, spawnError };
}

function pump(stream: Readable | null, name: 'stdout' | 'stderr', onLine: RunOptions['onLine']): Promise<void> {
  if (!stream) return Promise.resolve();
  let partial = '';
  stream.setEncoding('utf8');
  return new Promise((resolve) => {
    stream.on('data', (chunk: string) => {
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf('\n')) !== -1) {
        emit(partial.slice(0, nl).replace(/\r$/, ''));
        partial = partial.slice(nl + 1);
      }
      while (partial.length > MAX_CHUNK) {
        emit(partial.slice(0, MAX_CHUNK));
        partial = partial.slice(MAX_CHUNK);
      }
    });
    const done = (): void => {
      if (partial) emit(partial);
      partial = '';
      resolve();
    };
    stream.on('end', done);
    stream.on('error', done);
  });
  function emit(line: string): void {
    for (let i = 0; i < Math.max(1, line.length); i += MAX_CHUNK) onLine(name, line.slice(i, i + MAX_CHUNK));
  }
}
