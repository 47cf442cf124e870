// Runs the suite with node's test runner. Test files are compiled to
// dist/test/**; `unit` runs only unit tests. Files run two at a time (two
// cores); each file's own daemons are cleaned up by its fixtures.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
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
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
