// Run a command on a real pseudo-terminal (util-linux `script`), so what a
// CLI does only on a TTY (colours, a summary line redrawn in place) can be
// tested with the real binary. stdout and stderr both go to the terminal;
// the capture is what the terminal received, escape codes and \r included.
import { spawn } from 'node:child_process';

export interface TtyResult { code: number | null; output: string }

const quote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export function runInTty(argv: string[], opts: { timeoutMs?: number; columns?: number; env?: NodeJS.ProcessEnv } = {}): Promise<TtyResult> {
  // A known width: the CLI fits its summary line to it.
  const cmd = `stty cols ${opts.columns ?? 160} rows 50; exec ${argv.map(quote).join(' ')}`;
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...(opts.env ?? process.env), TERM: 'xterm', SHELL: '/bin/sh' };
    delete env['NO_COLOR'];
    const child = spawn('script', ['-q', '-e', '-f', '-c', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString('utf8'); });
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (code) => { clearTimeout(t); resolve({ code, output }); });
  });
}

const ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** The text a reader sees, line by line: colour codes dropped, each line as last redrawn after \r. */
export function screenLines(output: string): string[] {
  return output.replace(/\r\n/g, '\n').split('\n').map((l) => {
    const parts = l.split('\r');
    return parts[parts.length - 1]!.replace(ESCAPES, '');
  });
}

export function stripEscapes(s: string): string {
  return s.replace(ESCAPES, '');
}
