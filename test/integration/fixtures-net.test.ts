// Self-tests of the real-component fixtures: each proves its daemon really carries traffic
// to a tiny loopback echo server (or, for NAT, an echo server inside the hub namespace).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SocksClient } from 'socks';
import { tmpDir, waitFor } from '../helpers/proc.js';
import { createNat, netnsUnsupportedReason, run } from '../fixtures/netns.js';
import { corkscrewCommand, startDante, startMicrosocks, startTinyproxy } from '../fixtures/proxies.js';
import { generateKey, sshClientBaseArgs, startSshd } from '../fixtures/sshd.js';
import { startTorNetwork } from '../fixtures/tor.js';

const netnsSkip = await netnsUnsupportedReason();

/** Write msg and wait for exactly msg back (no half-close: Tor would reset the stream). */
function roundTrip(sock: net.Socket, msg: string, timeoutMs = 10_000, input: NodeJS.WritableStream = sock): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no echo within ${timeoutMs} ms (got ${JSON.stringify(got)})`)), timeoutMs);
    sock.on('error', (err: Error) => { clearTimeout(timer); reject(err); });
    sock.on('data', (d: Buffer | string) => {
      got += d.toString();
      if (got.length >= msg.length) { clearTimeout(timer); resolve(got); }
    });
    input.write(msg);
  });
}

/** HTTP CONNECT through a proxy; resolves with the status and, on 200, the tunnel. */
function httpConnect(proxyPort: number, target: string, headers: Record<string, string> = {}): Promise<{ status: number; socket?: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: target, headers: { host: target, ...headers }, timeout: 10_000 });
    req.on('connect', (res, socket) => {
      socket.on('error', () => { /* reported by the test's own handlers */ });
      if (res.statusCode === 200) resolve({ status: 200, socket });
      else { socket.destroy(); resolve({ status: res.statusCode ?? 0 }); }
    });
    req.on('response', (res) => { res.resume(); resolve({ status: res.statusCode ?? 0 }); });
    req.on('timeout', () => req.destroy(new Error('CONNECT timed out')));
    req.on('error', reject);
    req.end();
  });
}

// Echo server used by `node -e` inside namespaces; prints each peer address.
const NS_ECHO = `const net=require('node:net');net.createServer(c=>{console.log('conn '+c.remoteAddress);c.on('error',()=>{});c.pipe(c)})
  .listen(+process.argv[2],process.argv[1],()=>console.log('listening'))`;
// One bounded echo probe: exit 0 and print the reply, 2 on error, 3 on timeout.
const NS_PROBE = `const net=require('node:net');const s=net.connect({host:process.argv[1],port:+process.argv[2]});
  setTimeout(()=>{console.log('timeout');process.exit(3)},+process.argv[3]);
  s.on('connect',()=>s.write('ping'));s.on('data',d=>{console.log('reply '+d);process.exit(0)});
  s.on('error',e=>{console.log('error '+e.code);process.exit(2)})`;

describe('real-component fixtures', () => {
  let dir = '';
  let cleanupDir: () => Promise<void> = async () => {};
  let echo: net.Server;
  let echoPort = 0;
  const conns = new Set<net.Socket>();

  before(async () => {
    ({ dir, cleanup: cleanupDir } = await tmpDir('bento-fixtures-'));
    echo = net.createServer((c) => { conns.add(c); c.on('error', () => {}); c.on('close', () => conns.delete(c)); c.pipe(c); });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const c of conns) c.destroy();
    await new Promise((r) => echo.close(r));
    await cleanupDir();
  });

  test('tinyproxy: CONNECT by hostname reaches the echo server', { timeout: 30_000 }, async () => {
    const proxy = await startTinyproxy({ dir });
    try {
      const { status, socket } = await httpConnect(proxy.port, `localhost:${echoPort}`);
      assert.equal(status, 200);
      assert.equal(await roundTrip(socket!, 'hello'), 'hello');
      socket!.destroy();
      assert.deepEqual(await proxy.requestedDestinations(), [`localhost:${echoPort}`]);
    } finally { await proxy.stop(); }
  });

  test('tinyproxy: basic auth refuses without (407) or with wrong creds, accepts right ones; ConnectPort gives 403', { timeout: 30_000 }, async () => {
    const proxy = await startTinyproxy({ dir, basicAuth: { user: 'bento', pass: 's3cret' }, connectPorts: [echoPort] });
    try {
      assert.equal((await httpConnect(proxy.port, `127.0.0.1:${echoPort}`)).status, 407);
      const wrong = { 'proxy-authorization': `Basic ${Buffer.from('bento:nope').toString('base64')}` };
      // tinyproxy 1.11.1 answers *wrong* credentials with 401, missing ones with 407.
      assert.ok([401, 407].includes((await httpConnect(proxy.port, `127.0.0.1:${echoPort}`, wrong)).status));
      const auth = { 'proxy-authorization': `Basic ${Buffer.from('bento:s3cret').toString('base64')}` };
      const ok = await httpConnect(proxy.port, `127.0.0.1:${echoPort}`, auth);
      assert.equal(ok.status, 200);
      assert.equal(await roundTrip(ok.socket!, 'authed'), 'authed');
      ok.socket!.destroy();
      assert.equal((await httpConnect(proxy.port, `127.0.0.1:${echoPort + 1}`, auth)).status, 403);
    } finally { await proxy.stop(); }
  });

  test('corkscrew: ProxyCommand through tinyproxy carries a byte stream', { timeout: 30_000 }, async () => {
    const proxy = await startTinyproxy({ dir });
    const argv = corkscrewCommand(proxy.port).replace('%h', '127.0.0.1').replace('%p', String(echoPort)).split(' ');
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      child.stdin.on('error', () => {});
      // stdout is a net.Socket (a pipe); stdin takes the writes.
      assert.equal(await roundTrip(child.stdout as net.Socket, 'through corkscrew', 10_000, child.stdin), 'through corkscrew');
    } finally {
      child.kill('SIGKILL');
      await proxy.stop();
    }
  });

  test('microsocks: SOCKS5 by hostname, and the log names the requested host', { timeout: 30_000 }, async () => {
    const proxy = await startMicrosocks();
    try {
      const { socket } = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: proxy.port, type: 5 },
        command: 'connect', destination: { host: 'localhost', port: echoPort }, timeout: 10_000 });
      assert.equal(await roundTrip(socket, 'socks5h'), 'socks5h');
      socket.destroy();
      assert.deepEqual(await waitFor('microsocks log', async () => (await proxy.requestedDestinations()).length > 0 && proxy.requestedDestinations(), 5000),
        [`localhost:${echoPort}`]);
    } finally { await proxy.stop(); }
  });

  test('microsocks: username/password auth is enforced', { timeout: 30_000 }, async () => {
    const proxy = await startMicrosocks({ user: 'bento', pass: 's3cret' });
    const dest = { command: 'connect' as const, destination: { host: 'localhost', port: echoPort }, timeout: 10_000 };
    try {
      await assert.rejects(SocksClient.createConnection({ ...dest, proxy: { host: '127.0.0.1', port: proxy.port, type: 5 } }));
      const { socket } = await SocksClient.createConnection({ ...dest,
        proxy: { host: '127.0.0.1', port: proxy.port, type: 5, userId: 'bento', password: 's3cret' } });
      assert.equal(await roundTrip(socket, 'authed'), 'authed');
      socket.destroy();
    } finally { await proxy.stop(); }
  });

  test('dante: SOCKS5 by hostname reaches the echo server', { timeout: 30_000 }, async () => {
    const proxy = await startDante({ dir });
    try {
      const { socket } = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: proxy.port, type: 5 },
        command: 'connect', destination: { host: 'localhost', port: echoPort }, timeout: 10_000 });
      assert.equal(await roundTrip(socket, 'dante'), 'dante');
      socket.destroy();
      // Dante logs the resolved address, not the name (see proxies.ts).
      await waitFor('dante log line', async () => (await proxy.log()).includes(`127.0.0.1.${echoPort}`), 5000);
    } finally { await proxy.stop(); }
  });

  test('sshd: the authorized key logs in, a wrong key is refused, corkscrew ProxyCommand works', { timeout: 60_000 }, async () => {
    const good = await generateKey(dir, 'good_key');
    const bad = await generateKey(dir, 'bad_key');
    const sshd = await startSshd({ dir, authorizedKeys: [good.publicKey] });
    const proxy = await startTinyproxy({ dir });
    try {
      const knownHosts = path.join(dir, 'known_hosts');
      await writeFile(knownHosts, `${sshd.knownHostsLine()}\n`);
      const target = ['-p', String(sshd.port), 'root@127.0.0.1'];
      const ok = await run('ssh', [...sshClientBaseArgs({ dir, identityFile: good.privateKeyPath }), ...target, 'echo', 'in-sshd'], { timeoutMs: 20_000 });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), 'in-sshd');
      const denied = await run('ssh', [...sshClientBaseArgs({ dir, identityFile: bad.privateKeyPath }), ...target, 'true'], { timeoutMs: 20_000 });
      assert.equal(denied.code, 255);
      assert.match(denied.stderr, /Permission denied/);
      const viaProxy = await run('ssh', [...sshClientBaseArgs({ dir, identityFile: good.privateKeyPath }),
        '-o', `ProxyCommand=${corkscrewCommand(proxy.port)}`, ...target, 'true'], { timeoutMs: 20_000 });
      assert.equal(viaProxy.code, 0, viaProxy.stderr);
      assert.deepEqual(await proxy.requestedDestinations(), [`127.0.0.1:${sshd.port}`]);
    } finally {
      await proxy.stop();
      await sshd.stop();
    }
  });

  test('tor: a private network carries a stream to the echo server via the .onion', { timeout: 150_000 }, async () => {
    const tor = await startTorNetwork({ dir, targetPort: echoPort, onionPort: 2222 });
    try {
      const readyMs = await tor.waitReady(120_000);
      console.log(`# tor ready after ${readyMs} ms`);
      assert.match(tor.onionHostname, /^[a-z2-7]{56}\.onion$/);
      const { socket } = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: tor.socksPort, type: 5 },
        command: 'connect', destination: { host: tor.onionHostname, port: tor.onionPort }, timeout: 30_000 });
      assert.equal(await roundTrip(socket, 'over tor', 30_000), 'over tor');
      socket.destroy();
    } finally { await tor.stop(); }
  });

  test('netns NAT: client reaches hub as the router WAN address; hub cannot reach client; sshd in the hub ns', { skip: netnsSkip, timeout: 60_000 }, async () => {
    const nat = await createNat();
    try {
      const hubEcho = nat.spawnIn(nat.hub, 'hub-echo', process.execPath, ['-e', NS_ECHO, nat.hubAddr, '7000']);
      const clientListener = nat.spawnIn(nat.client, 'client-echo', process.execPath, ['-e', NS_ECHO, '0.0.0.0', '7001']);
      await waitFor('namespace echo servers', () => hubEcho.output().includes('listening') && clientListener.output().includes('listening'), 10_000);
      const out = await nat.exec(nat.client, process.execPath, ['-e', NS_PROBE, nat.hubAddr, '7000', '5000'], { timeoutMs: 15_000 });
      assert.equal(out.code, 0, out.stdout + out.stderr);
      assert.equal(out.stdout.trim(), 'reply ping');
      assert.match(hubEcho.output(), new RegExp(`conn ${nat.routerWanAddr.replace(/\./g, '\\.')}\\b`));
      assert.doesNotMatch(hubEcho.output(), /conn 10\.99\./);
      const back = await nat.exec(nat.hub, process.execPath, ['-e', NS_PROBE, nat.clientAddr, '7001', '3000'], { timeoutMs: 15_000 });
      assert.notEqual(back.code, 0, `hub reached the client: ${back.stdout}`);
      assert.doesNotMatch(clientListener.output(), /conn /);

      // sshd inside the hub namespace, reached by OpenSSH from behind the NAT.
      const key = await generateKey(dir, 'nat_key');
      const sshd = await startSshd({ dir: path.join(dir, 'nat'), netns: nat.hub, listenAddress: nat.hubAddr, authorizedKeys: [key.publicKey] });
      const knownHosts = path.join(dir, 'nat_known_hosts');
      await writeFile(knownHosts, `${sshd.knownHostsLine()}\n`);
      const ssh = await nat.exec(nat.client, 'ssh', [...sshClientBaseArgs({ dir, identityFile: key.privateKeyPath, knownHostsFile: knownHosts }),
        '-p', String(sshd.port), `root@${nat.hubAddr}`, 'echo $SSH_CLIENT'], { timeoutMs: 20_000 });
      assert.equal(ssh.code, 0, ssh.stderr);
      assert.match(ssh.stdout, new RegExp(`^${nat.routerWanAddr.replace(/\./g, '\\.')} `));
      await sshd.stop();
    } finally { await nat.destroy(); }
  });

  test('tor across NAT: onion service in the hub ns, tor client behind NAT', { skip: netnsSkip, timeout: 150_000 }, async () => {
    const nat = await createNat();
    try {
      const hubEcho = nat.spawnIn(nat.hub, 'hub-echo', process.execPath, ['-e', NS_ECHO, '127.0.0.1', '7000']);
      await waitFor('hub echo server', () => hubEcho.output().includes('listening'), 10_000);
      const tor = await startTorNetwork({ dir, targetPort: 7000, netns: { service: nat.hub, client: nat.client, address: nat.hubAddr } });
      try {
        const readyMs = await tor.waitReady(120_000);
        console.log(`# tor across NAT ready after ${readyMs} ms`);
        assert.match(hubEcho.output(), /conn 127\.0\.0\.1/); // the onion service tor connected
      } finally { await tor.stop(); }
    } finally { await nat.destroy(); }
  });
});
