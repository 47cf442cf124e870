// The admin CLI loads only what a command needs: the NATS client and the
// cluster stores when hub.json has a cluster section, the daemon for `serve`.
// Why a test: `bento-hub list` cost 0.65 s of CPU when every command module
// loaded them at start (0.3 s now), which made each CLI call slow for the
// admin and made the suite's polling loops (a CLI call every 100-250 ms)
// busy a core. A static import added back anywhere in the commands' graph
// brings that back silently; this finds it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';

const here = path.dirname(fileURLToPath(import.meta.url));
const main = path.join(here, '..', '..', 'hub', 'cli', 'main.js');

/** Every module URL node resolves while running the hub CLI with ARGS (a resolve hook that records them). */
function modulesLoaded(args: string[]): string[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-lazy-'));
  try {
    const out = path.join(dir, 'loaded.txt');
    const hooks = path.join(dir, 'hooks.mjs');
    writeFileSync(hooks, `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); appendFileSync(${JSON.stringify(out)}, r.url + '\\n'); return r; }\n`);
    const register = path.join(dir, 'register.mjs');
    writeFileSync(register, `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    try {
      execFileSync(process.execPath, ['--import', pathToFileURL(register).href, main, ...args], { stdio: 'pipe', timeout: 30_000 });
    } catch { /* the command's own failure (no fleet here) does not matter: what it loaded does */ }
    return execFileSync('cat', [out], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const heavy = (urls: string[]): string[] => urls.filter((u) => /@nats-io|\/hub\/daemon\.js$|\/hub\/cluster\/nats-backend\.js$|\/hub\/cluster\/content-cli-nats\.js$/.test(u));

test('bento-hub --help, list and status (no fleet) load neither the NATS client nor the daemon', () => {
  for (const args of [['--help'], ['list', '--dir', os.tmpdir()], ['status', '--dir', os.tmpdir()], ['logs', 'web1', '--dir', os.tmpdir()]]) {
    const urls = modulesLoaded(args);
    assert.ok(urls.some((u) => u.endsWith('/hub/cli/program.js')), `the hook saw the CLI's modules (${urls.length})`);
    assert.deepEqual(heavy(urls), [], `bento-hub ${args.join(' ')}`);
  }
});

test('serve loads the daemon (the check above can see a lazily loaded module)', () => {
  const urls = modulesLoaded(['serve', '--dir', path.join(os.tmpdir(), 'bento-no-such-fleet-dir')]);
  assert.ok(urls.some((u) => u.endsWith('/hub/daemon.js')), 'the daemon was loaded by serve');
});
