// Runs the suite with node's test runner. Test files are compiled to
// dist/test/**; `unit` runs only unit tests. Files run two at a time (two
// cores); each file's own daemons are cleaned up by its fixtures.
// Failures are also written, with their errors, by a second reporter
// (helpers/failure-reporter.ts) and printed again at the end, where a CI log's
// tail shows them; BENTO_TEST_FAILURES=FILE appends them to FILE as well (the
// runtimes' runs of .ci/test-nodes.sh, which prints them after the last).
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const groups = process.argv.slice(2);
const dirs = groups.length ? groups : ['unit', 'integration', 'e2e', 'browser'];

function collect(dir: string): string[] {
  let out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const p = path.join(dir, n);
    if (statSync(p).isDirectory()) out = out.concat(collect(p));
    else if (n.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = dirs.flatMap((d) => collect(path.join(root, d)));
if (files.length === 0) {
  process.stderr.write(`no test files under ${dirs.join(', ')}\n`);
  process.exit(1);
}
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bento-test-run-'));
const failures = path.join(tmp, 'failures.txt');
const reporters = [
  `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`, '--test-reporter-destination=stdout',
  `--test-reporter=${path.join(root, 'helpers', 'failure-reporter.js')}`, `--test-reporter-destination=${failures}`,
];
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...reporters, ...files], { stdio: 'inherit' });
child.on('exit', (code, signal) => {
  let text = '';
  try {
    text = readFileSync(failures, 'utf8');
  } catch { /* the runner wrote nothing: no failure */ }
  rmSync(tmp, { recursive: true, force: true });
  if (text) {
    const head = `== failing tests on Node ${process.version} (${groups.join(', ') || 'all'}), with their errors\n`;
    process.stdout.write(`\n${head}${text}`);
    if (process.env.BENTO_TEST_FAILURES) appendFileSync(process.env.BENTO_TEST_FAILURES, `${head}${text}`);
  }
  process.exit(code ?? (signal ? 1 : 0));
});
