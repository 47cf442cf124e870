// capYoungGeneration (common/platform/young-gen.ts) on the node that runs the
// tests: where process.execve exists (Node 22.15+, Node 24), the process
// re-executes itself once with --max-semi-space-size=8 and keeps its PID;
// where it does not (Node 20), nothing changes. A flag given on the command
// line or in NODE_OPTIONS is left alone. Each case is a real child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tmpDir } from '../helpers/proc.js';

const MODULE = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../common/platform/young-gen.js')).href;
const hasExecve = typeof (process as unknown as { execve?: unknown }).execve === 'function';

interface Seen { pid: number; execArgv: string[]; newSpaceMiB: number; spawnedPid: number }

async function run(nodeArgs: string[], env: NodeJS.ProcessEnv = {}): Promise<Seen> {
  const { dir, cleanup } = await tmpDir('bento-young-gen-');
  try {
    const script = path.join(dir, 'probe.mjs');
    // Allocates enough for V8 to grow the young generation as far as it may.
    await writeFile(script, `import v8 from 'node:v8';
import { capYoungGeneration } from ${JSON.stringify(MODULE)};
capYoungGeneration();
const keep = [];
for (let r = 0; r < 200; r++) { const a = []; for (let i = 0; i < 20000; i++) a.push({ i, s: 'x' + i }); if (r % 4 === 0) keep.push(a); }
const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
process.stdout.write(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, newSpaceMiB: ns.space_size / 1048576 }));
`);
    const child = spawn(process.execPath, [...nodeArgs, script], { env: { ...process.env, NODE_OPTIONS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, err);
    return { ...(JSON.parse(out) as Omit<Seen, 'spawnedPid'>), spawnedPid: child.pid! };
  } finally {
    await cleanup();
  }
}

test('the daemon runs with 8 MiB semi-spaces where it can re-execute itself, as the same process', async () => {
  const seen = await run([]);
  assert.equal(seen.pid, seen.spawnedPid, 'the same PID before and after');
  if (hasExecve) {
    assert.deepEqual(seen.execArgv, ['--max-semi-space-size=8']);
    assert.ok(seen.newSpaceMiB <= 3 * 8, `new space ${seen.newSpaceMiB} MiB`);
  } else {
    assert.deepEqual(seen.execArgv, [], `no process.execve on ${process.version}: nothing changes`);
  }
});

test('an explicit --max-semi-space-size, on the command line or in NODE_OPTIONS, is kept', async () => {
  const direct = await run(['--max-semi-space-size=4']);
  assert.deepEqual(direct.execArgv, ['--max-semi-space-size=4']);
  const viaEnv = await run([], { NODE_OPTIONS: '--max-semi-space-size=4' });
  assert.deepEqual(viaEnv.execArgv, []);
  assert.ok(viaEnv.newSpaceMiB <= 3 * 4, `new space ${viaEnv.newSpaceMiB} MiB`);
});

test('the re-executed process keeps its other node flags and arguments', async () => {
  const seen = await run(['--no-warnings']);
  assert.ok(seen.execArgv.includes('--no-warnings'));
  assert.equal(seen.execArgv.includes('--max-semi-space-size=8'), hasExecve);
});
