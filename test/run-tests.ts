// Runs the suite with node's test runner. Test files are compiled to
// dist/test/**; `unit` runs only unit tests. Files run CONCURRENCY at a time
// (BENTO_TEST_CONCURRENCY, default below); each file's own daemons are
// cleaned up by its fixtures. The long groups start first and the unit
// tests (short, many) last, so they fill the slots the long files leave
// instead of a 60 s file starting last and running alone.
// Failures are also written, with their errors, by a second reporter
// (helpers/failure-reporter.ts) and printed again at the end, where a CI log's
// tail shows them; BENTO_TEST_FAILURES=FILE appends them to FILE as well (the
// runtimes' runs of .ci/test-nodes.sh, which prints them after the last).
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Files at once: three, on a 2-core machine. The suite mostly waits (a hub
 * frozen for 30 s, floods of fixed length, liveness windows, Nix builds):
 * two at a time kept the CPU 61 % busy on average (2026-12-08, sampled every
 * 5 s over a full CI-style run: Node 24 in 948 s); three at a time 78-84 %,
 * Node 24 in 713-785 s. In four full runs at three no timing-bounded test
 * failed; what did fail were races the extra load exposed, each fixed (the
 * fleet lock, a port taken between a server's kill and restart, an object
 * store's opening not retried: docs/performance.md, eighth day). Three had
 * failed before (2026-12-07: load average 10, four timing-bounded tests),
 * when every fixture's wait polled through CLI processes of 0.65 s of CPU
 * each; they ask the admin socket now. BENTO_TEST_CONCURRENCY overrides it
 * (2 on a machine that is busy otherwise).
 */
const DEFAULT_CONCURRENCY = 3;

const root = path.dirname(fileURLToPath(import.meta.url));
const groups = process.argv.slice(2);
const dirs = groups.length ? groups : ['integration', 'browser', 'unit'];

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

/**
 * Files that evaluate Nix (the NixOS modules, the package, the VM tests)
 * through nix-instantiate: what they test does not depend on the Node
 * runtime. .ci/test-nodes.sh sets BENTO_TEST_NIX_ONCE=1 for the runs on the
 * runtimes after the first (they ran there): redundant work gone, though the
 * unit runs on 22 and 20 measured 55 s before and after (2026-12-07).
 */
const NIX_ONLY = /[\\/]unit[\\/]nixos-[^\\/]*\.test\.js$/;
const all = dirs.flatMap((d) => collect(path.join(root, d)));
const files = process.env.BENTO_TEST_NIX_ONCE === '1' ? all.filter((f) => !NIX_ONLY.test(f)) : all;
if (files.length < all.length) process.stdout.write(`# skipping ${all.length - files.length} files that only evaluate Nix (BENTO_TEST_NIX_ONCE=1: they ran on the first runtime)\n`);
if (files.length === 0) {
  process.stderr.write(`no test files under ${dirs.join(', ')}\n`);
  process.exit(1);
}
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bento-test-run-'));
const failures = path.join(tmp, 'failures.txt');
const durations = path.join(tmp, 'durations.txt');
// Ports handed out by every test file of this run (helpers/proc.ts freePort): one file's port is never another's.
const ports = path.join(tmp, 'ports');
mkdirSync(ports);
const reporters = [
  `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`, '--test-reporter-destination=stdout',
  `--test-reporter=${path.join(root, 'helpers', 'failure-reporter.js')}`, `--test-reporter-destination=${failures}`,
  `--test-reporter=${path.join(root, 'helpers', 'duration-reporter.js')}`, `--test-reporter-destination=${durations}`,
];
const concurrency = testConcurrency(process.env.BENTO_TEST_CONCURRENCY);
const started = Date.now();
const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...reporters, ...files], { stdio: 'inherit', env: { ...process.env, BENTO_TEST_PORTS: ports } });

function testConcurrency(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_CONCURRENCY;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 16) {
    process.stderr.write(`BENTO_TEST_CONCURRENCY must be an integer from 1 to 16, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

/** The slowest files of this run, for whoever watches the suite's length. */
function slowest(count: number): string {
  let lines: string[];
  try {
    lines = readFileSync(durations, 'utf8').split('\n').filter(Boolean);
  } catch {
    return '';
  }
  const rows = lines.map((l) => l.split('\t')).map(([ms, file]) => ({ ms: Number(ms), file: path.relative(root, file) }));
  rows.sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((s, r) => s + r.ms, 0);
  const head = `== ${rows.length} files, ${Math.round(total / 1000)} s of tests in ${Math.round((Date.now() - started) / 1000)} s, ${concurrency} at a time; the slowest:\n`;
  return head + rows.slice(0, count).map((r) => `${(r.ms / 1000).toFixed(1).padStart(7)} s  ${r.file}\n`).join('');
}

child.on('exit', (code, signal) => {
  process.stdout.write(`\n${slowest(12)}`);
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
