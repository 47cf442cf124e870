// The hub's binary cache through the agent's tunnel (issue 9), with real Nix:
// a signed binary cache written by `nix copy --to file://` on the hub side and
// served over loopback HTTP; the hub allow-lists it as service "cache"; the
// host substitutes the closure through its own loopback port into a fresh
// chroot store (so it cannot simply find the paths in /nix/store), and Nix
// checks the signature. A service that is not allow-listed, or a raw address,
// is refused and logged by the hub.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import ssh2 from 'ssh2';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, waitFor, waitForPort } from '../helpers/proc.js';
import { serveCacheDir, type StaticCache } from './cache-helpers.js';
import { buildFixture, makeNixEnv, nixAvailable, nixUnavailableReason, writeFixtureConfig, type NixEnv } from '../fixtures/nix.js';

const execFileP = promisify(execFile);
const NIX = ['--extra-experimental-features', 'nix-command'];

let fleet: TestFleet | null = null;
let cache: StaticCache | null = null;
const requests = (): string[] => cache?.requests ?? [];
let env: NixEnv;
let systemPath = '';
let cacheDir = '';
let publicKey = '';
let port1 = 0;
let port2 = 0;
const skip = !nixAvailable();

async function nix(args: string[], input?: string): Promise<string> {
  const p = execFileP('nix', [...NIX, ...args], { env: { ...process.env, ...env.env }, maxBuffer: 16 << 20 });
  if (input !== undefined) { p.child.stdin?.end(input); }
  return (await p).stdout;
}

before(async () => {
  if (skip) return;
  fleet = await TestFleet.create();
  env = await makeNixEnv(path.join(fleet.dir, 'nix'));
  // A closure of three real store paths (system, kernel, initrd), unique to this run.
  const cfg = path.join(env.root, 'sys.nix');
  await writeFixtureConfig(cfg, { host: 'web1', label: 'cache', kernelVersion: `6.6.${Date.now() % 100000}-cache`, nonce: `${Date.now()}-${Math.random()}` });
  systemPath = await buildFixture(cfg, env);
  // Signing key pair; the cache is signed as it is written.
  const sk = path.join(fleet.dir, 'cache.sk');
  await writeFile(sk, await nix(['key', 'generate-secret', '--key-name', 'bento-hub-test-1']), { mode: 0o600 });
  publicKey = (await nix(['key', 'convert-secret-to-public'], await readFile(sk, 'utf8'))).trim();
  cacheDir = path.join(fleet.dir, 'binary-cache');
  await nix(['copy', '--to', `file://${cacheDir}?secret-key=${sk}`, systemPath]);
  cache = await serveCacheDir(cacheDir);
  const httpPort = cache.port;

  // hub.json: only "cache" is a service.
  const hubJson = path.join(fleet.fleetDir, 'hub.json');
  const settings = JSON.parse(await readFile(hubJson, 'utf8'));
  await writeFile(hubJson, JSON.stringify({ ...settings, services: { cache: `127.0.0.1:${httpPort}` } }));
  await fleet.addHost('web1');
  await fleet.addHost('web2');
  port1 = await freePort();
  port2 = await freePort();
  await fleet.startHub();
  fleet.startAgent('web1', await fleet.agentConfig('web1', { cache: { localPort: port1 } }));
  fleet.startAgent('web2', await fleet.agentConfig('web2', { cache: { localPort: port2, service: 'admin' } }));
  await fleet.waitConnected(['web1', 'web2']);
  await waitForPort(port1);
  await waitForPort(port2);
});

after(async () => {
  await fleet?.close();
  await cache?.close();
});

test('a host substitutes a signed closure from the hub cache through its tunnel into a fresh store', { skip: skip && nixUnavailableReason() }, async () => {
  const fresh = path.join(fleet!.dir, 'fresh-root');
  const closure = (await execFileP('nix-store', ['-qR', systemPath])).stdout.trim().split('\n');
  assert.ok(closure.length >= 3, `closure: ${closure.join(' ')}`);
  for (const p of closure) assert.equal(existsSync(path.join(fresh, p)), false);
  const before = requests().length;
  const t0 = Date.now();
  await nix(['copy', '--from', `http://127.0.0.1:${port1}`, '--to', `local?root=${fresh}`,
    '--option', 'trusted-public-keys', publicKey, systemPath]);
  const ms = Date.now() - t0;
  for (const p of closure) assert.ok(existsSync(path.join(fresh, p)), `${p} substituted into the fresh store`);
  const served = requests().slice(before);
  const hash = path.basename(systemPath).slice(0, 32);
  assert.ok(served.includes(`/${hash}.narinfo`), `hub cache saw the narinfo request: ${served.join(' ')}`);
  assert.ok(served.filter((u) => u.startsWith('/nar/')).length >= closure.length, 'every NAR came through the tunnel');
  // The fresh store holds the same content (NAR hash) as the hub's copy.
  const info = JSON.parse(await nix(['path-info', '--json', '--store', `local?root=${fresh}`, systemPath])) as Array<{ narHash: string; signatures?: string[] }>;
  const orig = JSON.parse(await nix(['path-info', '--json', systemPath])) as Array<{ narHash: string }>;
  assert.equal(info[0]!.narHash, orig[0]!.narHash);
  assert.ok(info[0]!.signatures?.some((s) => s.startsWith('bento-hub-test-1:')), 'signed by the hub key');
  process.stderr.write(`# substituted ${closure.length} paths through the tunnel in ${ms} ms (${served.length} HTTP requests)\n`);
});

test('an untrusted signing key makes Nix reject the substitute (the signature is really checked)', { skip: skip && nixUnavailableReason() }, async () => {
  const other = path.join(fleet!.dir, 'other-root');
  const wrong = 'someone-else-1:' + Buffer.alloc(32, 7).toString('base64');
  await assert.rejects(nix(['copy', '--from', `http://127.0.0.1:${port1}`, '--to', `local?root=${other}`,
    '--option', 'trusted-public-keys', wrong, systemPath]), /signature|signed/i);
  assert.equal(existsSync(path.join(other, systemPath)), false);
});

test('a service not on the allow-list is refused and logged; so is a raw address', { skip: skip && nixUnavailableReason() }, async () => {
  // web2 asks for "admin": its local port accepts, then closes without a byte.
  const got = await new Promise<{ data: number; closed: boolean }>((resolve) => {
    let data = 0;
    const s = net.connect(port2, '127.0.0.1');
    s.on('data', (d) => { data += d.length; });
    s.on('error', () => {});
    s.on('connect', () => s.write('GET /nix-cache-info HTTP/1.0\r\n\r\n'));
    s.on('close', () => resolve({ data, closed: true }));
    setTimeout(() => { s.destroy(); resolve({ data, closed: false }); }, 5000).unref();
  });
  assert.deepEqual(got, { data: 0, closed: true });
  await waitFor('hub logs the refusal', () => /refused direct-tcpip channel/.test(fleet!.hub!.output()) && /admin/.test(fleet!.hub!.output()), 5000);
  assert.match(fleet!.agents.get('web2')!.output(), /hub refused the service channel/);

  // An authenticated peer naming the cache's real address (not its name) is refused too.
  const httpPort = cache!.port;
  const c = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    c.on('ready', () => resolve()).on('error', reject);
    c.connect({ host: '127.0.0.1', port: fleet!.sshPort, username: 'web2', privateKey: readFileSync(fleet!.keys.get('web2')!.keyPath) });
  });
  const before = requests().length;
  await assert.rejects(new Promise((resolve, reject) => c.forwardOut('127.0.0.1', 1, '127.0.0.1', httpPort, (err, ch) => (err ? reject(err) : resolve(ch)))));
  await assert.rejects(new Promise((resolve, reject) => c.forwardOut('127.0.0.1', 1, 'localhost', 22, (err, ch) => (err ? reject(err) : resolve(ch)))));
  c.end();
  assert.equal(requests().length, before, 'nothing reached the cache');
  await waitFor('hub logs the raw address', () => fleet!.hub!.output().includes(`127.0.0.1:${httpPort}`), 5000);
});
