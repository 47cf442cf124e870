// A small declarative CLI layer shared by bento-hub and bento-client: each
// command is a spec (name, usage, options with help) plus a run function.
// Help text and docs/cli.md are both rendered from the specs, so they cannot
// drift from what the parser accepts.
import { parseArgs } from 'node:util';
import { BentoError, ERRORS, asBentoError, type ErrorCode } from '../protocol/errors.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  help: string;
  /** Placeholder shown in help, e.g. FILE. */
  arg?: string;
}

export interface CommandContext {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  /** Arguments after a literal "--". */
  rest: string[];
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  details?: string;
  options: Record<string, OptionSpec>;
  positionals: { min: number; max: number };
  run(ctx: CommandContext): Promise<number>;
}

export interface ProgramSpec {
  bin: string;
  summary: string;
  commands: CommandSpec[];
  commonOptions: Record<string, OptionSpec>;
  /**
   * The error codes this program can exit with (its own and those its peer
   * can send it); `--help` lists only these. Absent: every code.
   */
  errorCodes?: readonly ErrorCode[];
}

export const EXIT_SUCCESS = 0;
export const EXIT_DETACHED = 130;

export function exitCodeTable(codes?: readonly ErrorCode[]): Array<[number, string]> {
  const byExit = new Map<number, string[]>();
  for (const [code, e] of Object.entries(ERRORS)) {
    if (codes && !codes.includes(code as ErrorCode)) continue;
    byExit.set(e.exit, [...(byExit.get(e.exit) ?? []), code]);
  }
  const rows: Array<[number, string]> = [[0, 'success']];
  for (const exit of [...byExit.keys()].sort((a, b) => a - b)) rows.push([exit, byExit.get(exit)!.join(', ')]);
  rows.push([EXIT_DETACHED, 'detached by Ctrl-C (the job goes on on the host)']);
  return rows;
}

function optionLines(opts: Record<string, OptionSpec>): string[] {
  return Object.entries(opts).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    return `  ${flag.padEnd(28)} ${o.help}${o.multiple ? ' (repeatable)' : ''}`;
  });
}

export function commandHelp(prog: ProgramSpec, cmd: CommandSpec): string {
  const lines = [`Usage: ${prog.bin} ${cmd.usage}`, '', cmd.summary];
  if (cmd.details) lines.push('', cmd.details);
  const opts = { ...cmd.options, ...prog.commonOptions };
  lines.push('', 'Options:', ...optionLines(opts));
  return lines.join('\n');
}

export function programHelp(prog: ProgramSpec): string {
  const width = Math.max(...prog.commands.map((c) => c.name.length)) + 2;
  return [
    `Usage: ${prog.bin} COMMAND [OPTIONS]`, '', prog.summary, '', 'Commands:',
    ...prog.commands.map((c) => `  ${c.name.padEnd(width)} ${c.summary}`),
    '', `Run \`${prog.bin} COMMAND --help\` for a command's options.`,
    '', 'Exit codes:', ...exitCodeTable(prog.errorCodes).map(([n, what]) => `  ${String(n).padEnd(4)} ${what}`),
  ].join('\n');
}

/** Edit distance counting a swap of two neighbours as one edit ("dri" is one from "dir"); names are short. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name closest to a mistyped one, if it is close enough to be what was meant. */
export function closest(typed: string, known: string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    // A prefix ("--verb" for "--verbose") counts as close, whatever its length.
    const d = k.startsWith(typed) && typed.length >= 2 ? 1 : distance(typed, k);
    if (d < bestD) { best = k; bestD = d; }
  }
  return best !== null && bestD <= Math.max(1, Math.min(3, Math.floor(best.length / 3))) ? best : null;
}

/**
 * Check the options before node's parser does, so each mistake gets one
 * plain sentence (node's wording talks about positionals after "--"): an
 * unknown option with the nearest known one, a missing value, a value given
 * to a switch.
 */
function checkOptions(args: string[], opts: Record<string, OptionSpec>): void {
  const config = Object.fromEntries(Object.entries(opts).map(([k, o]) => [k, { type: o.type, ...(o.short ? { short: o.short } : {}) }]));
  const { tokens } = parseArgs({ args, options: config, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const spec = Object.prototype.hasOwnProperty.call(opts, t.name) ? opts[t.name]! : undefined;
    if (!spec) {
      const guess = closest(t.name, Object.keys(opts));
      throw new BentoError('USAGE', `unknown option ${t.rawName}${guess ? ` (did you mean --${guess}?)` : ''}`);
    }
    if (spec.type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-') && t.value !== '-'))) {
      throw new BentoError('USAGE', `${t.rawName} needs a value (${t.rawName} ${spec.arg ?? 'VALUE'}${t.value === undefined ? '' : `; to pass one starting with "-", write ${t.rawName}=${t.value}`})`);
    }
    if (spec.type === 'boolean' && t.inlineValue) throw new BentoError('USAGE', `${t.rawName} takes no value (got ${t.rawName}=${t.value ?? ''})`);
  }
}

/** Markdown reference for docs/cli.md. */
export function programMarkdown(prog: ProgramSpec): string {
  const out = [`## ${prog.bin}`, '', prog.summary, ''];
  for (const c of prog.commands) {
    out.push(`### ${prog.bin} ${c.name}`, '', '```', commandHelp(prog, c), '```', '');
  }
  return out.join('\n');
}

export async function runProgram(prog: ProgramSpec, argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${programHelp(prog)}\n`);
    return name ? EXIT_SUCCESS : ERRORS.USAGE.exit;
  }
  if (name === '--version') {
    const { BENTO_VERSION } = await import('../protocol/version.js');
    process.stdout.write(`${BENTO_VERSION}\n`);
    return EXIT_SUCCESS;
  }
  const cmd = prog.commands.find((c) => c.name === name);
  if (!cmd) {
    const guess = closest(name, prog.commands.map((c) => c.name));
    process.stderr.write(`${prog.bin}: unknown command "${name}"${guess ? ` (did you mean ${guess}?)` : ''} [USAGE]\nRun \`${prog.bin} --help\` for the commands.\n`);
    return ERRORS.USAGE.exit;
  }
  const dashdash = args.indexOf('--');
  const own = dashdash === -1 ? args : args.slice(0, dashdash);
  const rest = dashdash === -1 ? [] : args.slice(dashdash + 1);
  if (own.includes('--help') || own.includes('-h')) {
    process.stdout.write(`${commandHelp(prog, cmd)}\n`);
    return EXIT_SUCCESS;
  }
  try {
    const all = { ...cmd.options, ...prog.commonOptions };
    checkOptions(own, all);
    const options = Object.fromEntries(
      Object.entries(all).map(([k, o]) => [k, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
    );
    let parsed;
    try {
      parsed = parseArgs({ args: own, options, allowPositionals: true, strict: true });
    } catch (err) {
      throw new BentoError('USAGE', (err as Error).message);
    }
    const n = parsed.positionals.length;
    if (n < cmd.positionals.min || n > cmd.positionals.max) {
      throw new BentoError('USAGE', `expected ${cmd.positionals.min === cmd.positionals.max ? cmd.positionals.min : `${cmd.positionals.min}..${cmd.positionals.max === Infinity ? 'n' : cmd.positionals.max}`} argument(s), got ${n}\nUsage: ${prog.bin} ${cmd.usage}`);
    }
    return await cmd.run({ values: parsed.values as CommandContext['values'], positionals: parsed.positionals, rest });
  } catch (err) {
    const e = asBentoError(err);
    const json = own.includes('--json');
    if (json) process.stdout.write(`${JSON.stringify({ error: { code: e.code, message: e.message } })}\n`);
    process.stderr.write(`${prog.bin} ${name}: ${e.message}${e.code === 'INTERNAL' ? '' : ` [${e.code}]`}\n`);
    if (e.code === 'USAGE' && !json) process.stderr.write(`Run \`${prog.bin} ${name} --help\` for its options.\n`);
    return e.exitCode;
  }
}

/**
 * Once `stream` has handed what waits in it to the OS (at once when nothing
 * waits, or when the reader went away). A command that prints a lot waits
 * here between events: a reader that is slower (`| less`) slows the command,
 * and through it the hub's stream, instead of filling this process's memory.
 */
export function drained(stream: NodeJS.WritableStream & { writableNeedDrain?: boolean; destroyed?: boolean }): Promise<void> {
  if (!stream.writableNeedDrain || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => { stream.off('drain', done); stream.off('error', done); stream.off('close', done); resolve(); };
    stream.once('drain', done);
    stream.once('error', done);
    stream.once('close', done);
  });
}

/** Exit with `code` once stdout and stderr are written out (writes to a pipe are asynchronous: process.exit() would cut them). */
export async function exitFlushed(code: number): Promise<never> {
  await Promise.all([drainedFully(process.stdout), drainedFully(process.stderr)]);
  process.exit(code);
}

function drainedFully(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableLength === 0 || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('error', () => resolve());
    stream.once('close', () => resolve());
    stream.write('', () => resolve());
  });
}

/** Colour only on a TTY, and never when NO_COLOR is set. */
export function colour(stream: NodeJS.WriteStream): (code: number, s: string) => string {
  const on = stream.isTTY === true && !process.env['NO_COLOR'];
  return (code, s) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
}
