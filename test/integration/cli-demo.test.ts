// `npm run demo` as a newcomer meets it: banners and human output only (the
// daemons' JSON logs go to files), three agents each with their own local
// page, the dashboard's URL with its token (and it answers, with --keep),
// and nothing touched outside its temp directory: HOME and TMPDIR are fresh
// empty directories that must be empty again afterwards, and, where strace
// runs, every file-changing syscall and socket bind of every process it
// started is checked against that directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnDaemon, tmpDir, waitFor } from '../helpers/proc.js';
import { descendants, stopTree } from '../helpers/proctree.js';

const DEMO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../demo/run-demo.js');
const straceWorks = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', 'true']).status === 0;

/** System calls that change the file system or bind a socket. */
const CHANGES = ['openat', 'open', 'creat', 'mkdir', 'mkdirat', 'unlink', 'unlinkat', 'rmdir', 'rename', 'renameat', 'renameat2', 'symlink', 'symlinkat',
  'link', 'linkat', 'chmod', 'fchmodat', 'chown', 'fchownat', 'lchown', 'truncate', 'utimensat', 'mknod', 'mknodat', 'bind'];

function get(url: string, auth?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { ...(auth ? { auth } : {}), timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** The pid of the demo itself: strace's first child when traced. */
function demoPid(top: number, traced: boolean): number {
  if (!traced) return top;
  const kid = descendants(top)[0];
  assert.ok(kid, 'strace has started the demo');
  return kid.pid;
}

test('npm run demo: clean output, its own ports and sockets, the dashboard, nothing outside its temp dir', { timeout: 240_000 }, async () => {
  const t = await tmpDir('bento-demo-test-');
  const home = path.join(t.dir, 'home');
  const tmp = path.join(t.dir, 'tmp');
  const traceDir = path.join(t.dir, 'trace');
  await Promise.all([mkdir(home), mkdir(tmp), mkdir(traceDir)]);
  const env = { ...process.env, HOME: home, TMPDIR: tmp, NO_COLOR: '1' };
  const argv = [process.execPath, DEMO, '--keep'];
  const demo = straceWorks
    ? spawnDaemon('demo', 'strace', ['-ff', '-qq', '-s', '4096', '-e', `trace=${CHANGES.join(',')}`, '-e', 'signal=none', '-o', path.join(traceDir, 'demo'), ...argv], { env })
    : spawnDaemon('demo', argv[0]!, argv.slice(1), { env });
  const child = demo.child;
  try {
    await waitFor('the demo to settle in --keep', () => demo.output().includes('Ctrl-C stops it') || child.exitCode !== null, 150_000, 200);
    let out = demo.output();
    assert.equal(child.exitCode, null, out);

    // No daemon log line between the banners: every line is a banner or a CLI's human output.
    assert.ok(!out.split('\n').some((l) => l.trimStart().startsWith('{')), `raw JSON in the output:\n${out}`);
    for (const b of ['== bento-hub init', '== bento-hub list', '== bento-hub trigger --all', '== bento-hub status', '== the dashboard']) assert.ok(out.includes(b), b);
    assert.match(out, /^HOST\s+OUTCOME[\s\S]*^web2\s+success/m);

    // The dashboard answers at the printed URL with the printed token, and not without it.
    const m = /^http:\/\/bento:([A-Za-z0-9_-]+)@(127\.0\.0\.1:\d+)\/$/m.exec(out);
    assert.ok(m, out);
    const page = await get(`http://${m[2]}/`, `bento:${m[1]}`);
    assert.equal(page.status, 200);
    for (const h of ['web1', 'web2', 'db1']) assert.ok(page.body.includes(h), h);
    assert.equal((await get(`http://${m[2]}/`)).status, 401);

    // Each agent has its own local page (none lost a fight over the default port or socket).
    const root = /^Logs: (\S+)\/logs\./m.exec(out)?.[1] ?? assert.fail(`no "Logs:" line:\n${out}`);
    assert.ok(root.startsWith(`${tmp}/`), `the demo lives in TMPDIR: ${root}`);
    const listens = new Set<string>();
    for (const h of ['web1', 'web2', 'db1']) {
      const cfg = JSON.parse(await readFile(path.join(root, `${h}.json`), 'utf8')) as { localPage: { listen: string; socket: string } };
      assert.ok(cfg.localPage.socket.startsWith(`${root}/`), cfg.localPage.socket);
      listens.add(cfg.localPage.listen);
      const local = await get(`http://${cfg.localPage.listen}/`);
      assert.equal(local.status, 200, `${h}'s local page answers`);
      assert.ok(local.body.includes(h), `${cfg.localPage.listen} is ${h}'s own page`);
    }
    assert.equal(listens.size, 3);

    // Ctrl-C: the demo stops its fleet and removes its directory.
    process.kill(demoPid(child.pid!, straceWorks), 'SIGINT');
    await waitFor('the demo to exit', () => child.exitCode !== null || child.signalCode !== null, 60_000, 100);
    const code = await demo.exited;
    out = demo.output();
    assert.equal(code, 0, out);
    assert.match(out, /demo finished/);
    assert.deepEqual(await readdir(tmp), [], 'TMPDIR is empty again');
    assert.deepEqual(await readdir(home), [], 'HOME untouched');
    if (straceWorks) {
      const outside: string[] = [];
      for (const f of await readdir(traceDir)) {
        for (const line of (await readFile(path.join(traceDir, f), 'utf8')).split('\n')) {
          const call = /^(\w+)\(/.exec(line)?.[1];
          if (!call || !CHANGES.includes(call)) continue;
          if ((call === 'openat' || call === 'open') && !/O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/.test(line)) continue;
          if (call === 'bind' && !line.includes('AF_UNIX')) {
            assert.doesNotMatch(line, /htons\(51337\)/, 'no agent binds the default local page port');
            continue;
          }
          const paths = [...line.matchAll(/"([^"]*)"/g)].map((x) => x[1]!);
          if (paths.length === 0 || paths.some((p) => !(p.startsWith(`${tmp}/`) || p === '/dev/null' || p === '/dev/tty'))) outside.push(`${f}: ${line}`);
        }
      }
      assert.deepEqual(outside, [], 'changes outside the temp directory');
    }
  } finally {
    // Whatever failed: the demo, its hub and agents (and strace) all go.
    await stopTree(demo);
    await t.cleanup();
  }
});
