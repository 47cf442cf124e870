// A second node:test reporter (next to tap or spec) that writes only the
// failures, each with its file, name and error, to its destination. Why: CI
// keeps the tail of a 14-minute log, and a Node 24 failure's details sit far
// above the later runtimes' unit output, so CI showed a failing test's name
// and nothing about why. run-tests.ts prints this file last (README, the test command).
import { inspect } from 'node:util';

/** Enough for an assertion's diff and the first frames of its stack, not a whole captured log. */
const MAX_ERROR_CHARS = 4000;

interface FailData {
  name: string;
  nesting: number;
  file?: string;
  line?: number;
  details: { duration_ms?: number; error?: unknown };
}

/** Lines of a test file's own stderr kept for a file that fails outside any test (a crash at load). */
const STDERR_LINES = 40;

type TestError = { code?: string; failureType?: string; cause?: unknown } | undefined;

/** The assertion or exception itself: node:test wraps it in ERR_TEST_FAILURE with it as the cause. */
function errorText(err: unknown): string {
  const inner = (err as TestError)?.code === 'ERR_TEST_FAILURE' ? (err as { cause?: unknown }).cause : err;
  const raw = inner instanceof Error ? (inner.stack ?? `${inner.name}: ${inner.message}`) : inspect(inner, { depth: 4 });
  // node:test's own frames say nothing about the failure.
  const text = raw.split('\n').filter((l) => !/^\s+at (.*\(node:|node:)/.test(l)).join('\n');
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}\n... (${text.length - MAX_ERROR_CHARS} more characters)` : text;
}

export default async function* failureReporter(source: AsyncIterable<{ type: string; data: unknown }>): AsyncGenerator<string> {
  const stderr = new Map<string, string[]>(); // per file, its last lines
  for await (const event of source) {
    if (event.type === 'test:stderr') {
      const { file, message } = event.data as { file?: string; message: string };
      const lines = stderr.get(file ?? '') ?? [];
      lines.push(...message.replace(/\n$/, '').split('\n'));
      stderr.set(file ?? '', lines.slice(-STDERR_LINES));
      continue;
    }
    if (event.type !== 'test:fail') continue;
    const d = event.data as FailData;
    // A suite that failed because a test in it failed: that test is reported itself.
    if ((d.details.error as TestError)?.failureType === 'subtestsFailed') continue;
    const where = d.file ? `${d.file}${d.line ? `:${d.line}` : ''}` : '(no file)';
    const took = d.details.duration_ms !== undefined ? ` after ${Math.round(d.details.duration_ms)} ms` : '';
    let text = `not ok: ${d.name}\n  at ${where}${took}\n${errorText(d.details.error).replace(/^/gm, '  | ')}\n`;
    // The file itself failed (it crashed or hung outside a test): what it printed last says why.
    if (d.file && d.name === d.file && stderr.get(d.file)?.length) text += `  its stderr, last lines:\n${stderr.get(d.file)!.map((l) => `  > ${l}`).join('\n')}\n`;
    yield `${text}\n`;
  }
}
