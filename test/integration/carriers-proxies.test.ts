// Every carrier and proxy path with the real software a user would have:
// tinyproxy (HTTP CONNECT), corkscrew (ProxyCommand) through tinyproxy,
// WebSocket directly and through tinyproxy, wss with TLS, SOCKS5 through
// microsocks and dante (socks5h and socks5). On each path: the agent connects,
// `list` shows the path, a trigger runs, and a wrong hub key is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { writeFile, readFile } from 'node:fs/promises';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { startTinyproxy, startMicrosocks, startDante, corkscrewCommand, type NamedProxy, type Proxy } from '../fixtures/proxies.js';

let fleet: TestFleet;
let wsPort: number;
let tiny: NamedProxy;
let micro: NamedProxy;
let dante: Proxy;
const WRONG_FP = `SHA256:${'B'.repeat(43)}`;

before(async () => {
  fleet = await TestFleet.create();
  wsPort = await freePort();
  await fleet.startHub(['--ws-listen', `127.0.0.1:${wsPort}`]);
  tiny = await startTinyproxy({ dir: fleet.dir });
  micro = await startMicrosocks();
  dante = await startDante({ dir: fleet.dir });
});
after(async () => {
  // Proxies first: they log into the fleet's temp dir until they exit.
  await Promise.all([tiny?.stop(), micro?.stop(), dante?.stop()]);
  await fleet?.close();
});

interface PathCase { host: string; endpoint: Record<string, unknown>; carrier: 'ssh' | 'ws'; via: RegExp }
const cases = (): PathCase[] => [
  { host: 'p-connect', endpoint: { url: `ssh://localhost:${fleet.sshPort}`, proxy: `http://127.0.0.1:${tiny.port}` }, carrier: 'ssh', via: /^http:\/\/127\.0\.0\.1:\d+ -> ssh:\/\/localhost:\d+$/ },
  { host: 'p-corkscrew', endpoint: { url: `ssh://localhost:${fleet.sshPort}`, proxyCommand: corkscrewCommand(tiny.port) }, carrier: 'ssh', via: /^proxycommand\(corkscrew\) -> ssh:/ },
  { host: 'p-ws', endpoint: { url: `ws://127.0.0.1:${wsPort}/bento` }, carrier: 'ws', via: /^ws:\/\/127\.0\.0\.1:\d+\/bento$/ },
  { host: 'p-ws-connect', endpoint: { url: `ws://localhost:${wsPort}/bento`, proxy: `http://127.0.0.1:${tiny.port}` }, carrier: 'ws', via: /^http:.* -> ws:\/\/localhost/ },
  { host: 'p-microsocks', endpoint: { url: `ssh://localhost:${fleet.sshPort}`, proxy: `socks5h://127.0.0.1:${micro.port}` }, carrier: 'ssh', via: /^socks5h:/ },
  { host: 'p-dante', endpoint: { url: `ssh://localhost:${fleet.sshPort}`, proxy: `socks5h://127.0.0.1:${dante.port}` }, carrier: 'ssh', via: /^socks5h:/ },
  { host: 'p-socks5-local', endpoint: { url: `ssh://localhost:${fleet.sshPort}`, proxy: `socks5://127.0.0.1:${micro.port}` }, carrier: 'ssh', via: /^socks5:/ },
  { host: 'p-ws-socks', endpoint: { url: `ws://localhost:${wsPort}/bento`, proxy: `socks5h://127.0.0.1:${micro.port}` }, carrier: 'ws', via: /^socks5h:.* -> ws:/ },
];

test('every path: connect, list shows carrier and path, trigger runs through it', async () => {
  const all = cases();
  for (const c of all) {
    await fleet.addHost(c.host);
    fleet.startAgent(c.host, await fleet.agentConfig(c.host, { hub: undefined, endpoints: [c.endpoint], rebuildCommand: ['/bin/echo', `rebuilt via ${c.host}`] }));
  }
  await fleet.waitConnected(all.map((c) => c.host), 20_000).catch(async (err: Error) => {
    throw new Error(`${err.message}\n--- dante log:\n${(await dante.log()).slice(-2000)}\n--- hub:\n${fleet.hub!.output().slice(-3000)}`);
  });
  const listed = new Map((await fleet.list()).map((c) => [c.name, c]));
  for (const c of all) {
    const row = listed.get(c.host)!;
    assert.equal(row['carrier'], c.carrier, c.host);
    assert.match(String(row['endpoint']), c.via, c.host);
    const r = await fleet.hubCli(['trigger', c.host, '--action', 'build']);
    assert.equal(r.code, 0, `${c.host}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`rebuilt via ${c.host} build`));
  }
});

test('socks5h sends the hub name to the proxy unresolved; HTTP CONNECT asks for it by name', async () => {
  const asked = await micro.requestedDestinations();
  assert.ok(asked.includes(`localhost:${fleet.sshPort}`), `microsocks was asked for ${asked.join(', ')}`);
  // socks5:// resolved locally, so microsocks also saw an address for that agent.
  assert.ok(asked.includes(`127.0.0.1:${fleet.sshPort}`), 'socks5:// resolves locally, by contrast');
  const viaTiny = await tiny.requestedDestinations();
  assert.ok(viaTiny.includes(`localhost:${fleet.sshPort}`));
  assert.ok(viaTiny.includes(`localhost:${wsPort}`));
});

test('a wrong hub key is refused on every path', async () => {
  for (const c of cases()) {
    const name = `${c.host}`;
    const cfg = await fleet.agentConfig(name, { hub: undefined, endpoints: [c.endpoint], hubFingerprint: WRONG_FP, stateDir: path.join(fleet.dir, `wrong-${name}`) });
    const file = path.join(fleet.dir, `wrong-${name}.json`);
    await writeFile(file, await readFile(cfg));
    const a = fleet.startAgent(`wrong-${name}`, file);
    await waitFor(`${name}: HOST_KEY_MISMATCH`, () => a.output().includes('HOST_KEY_MISMATCH') && a.output().includes(fleet.fingerprint), 10_000)
      .catch(async (err: Error) => { throw new Error(`${err.message}\n${a.output().slice(-2000)}\n--- dante:\n${(await dante.log()).slice(-1500)}`); });
    await a.stop();
  }
});

test('wss: TLS from hub.json, the agent trusts the given CA', async () => {
  const f2 = await TestFleet.create();
  try {
    const cert = path.join(f2.dir, 'cert.pem');
    const key = path.join(f2.dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const hubJson = path.join(f2.fleetDir, 'hub.json');
    const port = await freePort();
    await writeFile(hubJson, JSON.stringify({ ...JSON.parse(await readFile(hubJson, 'utf8')), wsListen: `127.0.0.1:${port}`, tls: { cert, key } }));
    await f2.startHub();
    await f2.addHost('tls1');
    f2.startAgent('tls1', await f2.agentConfig('tls1', { hub: undefined, endpoints: [{ url: `wss://localhost:${port}/bento`, ca: cert }], rebuildCommand: ['/bin/echo', 'over-tls'] }));
    await f2.waitConnected(['tls1']);
    const r = await f2.hubCli(['trigger', 'tls1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /over-tls switch/);
    // Without the CA the TLS handshake fails and the agent says why.
    await f2.addHost('tls2');
    const bad = f2.startAgent('tls2', await f2.agentConfig('tls2', { hub: undefined, endpoints: [`wss://localhost:${port}/bento`] }));
    await waitFor('certificate error logged', () => /self.signed|certificate/i.test(bad.output()), 10_000);
  } finally {
    await f2.close();
  }
});
