// ssh to any host through the hub, for real: OpenSSH's `ssh` with
// `ProxyCommand=bento-hub proxy %h PORT` reaches a real private sshd on the
// agent's side through the agent's reverse forward (the hub binds no port),
// `bento-hub ssh` and `bento-hub ssh-config` + `ssh -F` do the same, a port
// the agent does not allow is refused, and only admins (socket permissions)
// can open such channels. Last, the same behind a NAT router.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import ssh2 from 'ssh2';
import { TestFleet, HUB_BIN, CLIENT_BIN } from '../helpers/fleet.js';
import { freePort } from '../helpers/proc.js';
import { generateKey, sshClientBaseArgs, startSshd, type KeyPair, type Sshd } from '../fixtures/sshd.js';
import { createNat, netnsUnsupportedReason } from '../fixtures/netns.js';
import { fingerprintOfBlob } from '../../common/protocol/fingerprint.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';

interface Run { code: number | null; stdout: string; stderr: string; ms: number }

function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

let fleet: TestFleet;
let sshd: Sshd;
let admin: KeyPair;
let base: string[];
const proxyCmd = (port: number | string): string => `${process.execPath} ${HUB_BIN} proxy %h ${port} --dir ${fleet.fleetDir}`;

before(async () => {
  fleet = await TestFleet.create();
  admin = await generateKey(fleet.dir, 'admin_ed25519');
  sshd = await startSshd({ dir: fleet.dir, authorizedKeys: [admin.publicKey] });
  // Registry hints: the host's sshd listens on sshd.port behind the tunnel.
  await fleet.addHost('web1', ['--ssh-port', String(sshd.port), '--ssh-user', 'root']);
  await fleet.startHub();
  fleet.startAgent('web1', await fleet.agentConfig('web1', { allowForwardPorts: [sshd.port] }));
  await fleet.waitConnected(['web1']);
  // ssh sees host "web1" on its default port: that is the known_hosts entry.
  await writeFile(path.join(fleet.dir, 'known_hosts'), `${sshd.knownHostsLine('web1', 22)}\n`);
  base = sshClientBaseArgs({ dir: fleet.dir, identityFile: admin.privateKeyPath });
});
after(async () => {
  // sshd first: it lives in the fleet's temp dir.
  await sshd?.stop();
  await fleet?.close();
});

test('real ssh through `bento-hub proxy` reaches the agent-side sshd and runs a command', async () => {
  const r = await run('ssh', [...base, '-o', `ProxyCommand=${proxyCmd(sshd.port)}`, 'root@web1', 'echo "through the tunnel: $(id -un)"']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'through the tunnel: root\n');
  // sshd really served it: it logs the accepted key.
  assert.match(sshd.daemon.output(), /Accepted publickey for root/);
  // Several commands in a row, and a bulk transfer both ways (flow control through the channel).
  const blob = Buffer.alloc(4 << 20, 'x').toString();
  const big = await run('ssh', [...base, '-o', `ProxyCommand=${proxyCmd(sshd.port)}`, 'root@web1', 'wc -c'], { input: blob });
  assert.equal(big.code, 0, big.stderr);
  assert.equal(big.stdout.trim(), String(4 << 20));
  // The admin's side may close first (stdin EOF): the host's answer must still arrive.
  for (let i = 0; i < 5; i++) {
    const early = await run(process.execPath, [HUB_BIN, 'proxy', 'web1', String(sshd.port), '--dir', fleet.fleetDir], { input: '' });
    assert.match(early.stdout, /^SSH-2\.0-OpenSSH/, `attempt ${i}: ${early.stderr}`);
  }
  const times: number[] = [];
  for (let i = 0; i < 3; i++) times.push((await run('ssh', [...base, '-o', `ProxyCommand=${proxyCmd(sshd.port)}`, 'root@web1', 'true'])).ms);
  console.log(`# ssh root@web1 true through the hub: ${times.join(', ')} ms (includes starting the node CLI); 4 MiB through stdin: ${big.ms} ms`);
});

test('a port the agent does not allow is refused by the hub, and ssh fails cleanly', async () => {
  const other = await freePort();
  const r = await run(process.execPath, [HUB_BIN, 'proxy', 'web1', String(other), '--dir', fleet.fleetDir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`does not offer port ${other} \\(its agent allows: ${sshd.port}\\) \\[FORBIDDEN\\]`));
  const s = await run('ssh', [...base, '-o', `ProxyCommand=${proxyCmd(other)}`, 'root@web1', 'true']);
  assert.equal(s.code, 255);
  const offline = await run(process.execPath, [HUB_BIN, 'proxy', 'nosuch', '22', '--dir', fleet.fleetDir]);
  assert.equal(offline.code, 5, offline.stderr);
});

test('`bento-hub ssh HOST -- ssh-args` and `ssh-config` blocks used with `ssh -F` both work', async () => {
  const viaCmd = await run(process.execPath, [HUB_BIN, 'ssh', 'web1', '--dir', fleet.fleetDir, '--', ...base, 'echo via-bento-ssh']);
  assert.equal(viaCmd.code, 0, viaCmd.stderr);
  assert.equal(viaCmd.stdout, 'via-bento-ssh\n');

  const cfg = await run(process.execPath, [HUB_BIN, 'ssh-config', '--dir', fleet.fleetDir, '--suffix', '.bento']);
  assert.equal(cfg.code, 0, cfg.stderr);
  assert.match(cfg.stdout, /^Host web1 web1\.bento$/m);
  assert.match(cfg.stdout, new RegExp(`ProxyCommand .* proxy %h ${sshd.port} --dir `));
  const file = path.join(fleet.dir, 'ssh_config');
  await writeFile(file, cfg.stdout);
  const opts = base.filter((a, i) => a !== '-F' && base[i - 1] !== '-F');
  const r = await run('ssh', ['-F', file, ...opts, 'web1.bento', 'echo via-ssh-config']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'via-ssh-config\n');
});

test('only admins can open channels: a non-root user is refused at the admin socket; the admin group may', async () => {
  // Let `nobody` reach the socket file itself, so its mode (0600 root) is what decides.
  await chmod(fleet.dir, 0o711);
  await chmod(fleet.fleetDir, 0o711);
  const sock = path.join(fleet.fleetDir, 'hub.sock');
  assert.equal((await stat(sock)).mode & 0o777, 0o600);
  // Like ssh would, keep stdin open; stop once sshd's banner arrived (or the CLI gave up).
  const asNobody = (): Promise<Run> => new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn('runuser', ['-u', 'nobody', '--', process.execPath, HUB_BIN, 'proxy', 'web1', String(sshd.port), '--dir', fleet.fleetDir]);
    let stdout = '';
    let stderr = '';
    const t = setTimeout(() => child.kill(), 10_000);
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); if (stdout.includes('\n')) child.kill(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr, ms: Date.now() - t0 }); });
  });
  // The test needs `nobody` to be able to run this node and the CLI; say so plainly if not
  // (a runtime unpacked into a 0700 temp dir once failed here as a bare EACCES).
  const canRun = spawnSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', 'test -x "$0" && test -r "$1"', process.execPath, HUB_BIN]);
  assert.equal(canRun.status, 0, `user nobody cannot run ${process.execPath} ${HUB_BIN}: put node and the checkout where others may read them`);
  const refused = await asNobody();
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /no permission to use .*hub\.sock: only the hub's admins may \[FORBIDDEN\]/);
  assert.equal(refused.stdout, '', 'not a byte from the host');

  // The documented way to widen it: hub.json "adminGroup" makes the socket 0660 for that group.
  const hubJson = path.join(fleet.fleetDir, 'hub.json');
  const original = await readFile(hubJson, 'utf8');
  await writeFile(hubJson, JSON.stringify({ ...JSON.parse(original), adminGroup: 'nogroup' }));
  await fleet.stopHub();
  await fleet.startHub();
  await fleet.waitConnected(['web1']);
  assert.equal((await stat(sock)).mode & 0o777, 0o660);
  const allowed = await asNobody();
  // nobody (group nogroup) now gets the raw channel: sshd's banner comes back on stdout.
  assert.match(allowed.stdout, /^SSH-2\.0-OpenSSH/, `stderr: ${allowed.stderr}`);
  await writeFile(hubJson, original);
  await fleet.stopHub();
  await fleet.startHub();
  await fleet.waitConnected(['web1']);
});

test('the agent itself refuses forwarded channels to ports outside allowForwardPorts, whatever the hub asks', async () => {
  // A rogue "hub" (ssh2 server with a key the agent pins) asks the agent for a
  // channel to a port it never offered, then to the allowed one.
  const hostKey = generateEd25519();
  const parsed = ssh2.utils.parseKey(hostKey.private);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('key');
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const allowedPort = (echo.address() as net.AddressInfo).port;
  const forbidden = sshd.port; // a real listener the agent must still not connect to
  const sshdConnections = (sshd.daemon.output().match(/Connection from/g) ?? []).length;
  const results: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  const server = new ssh2.Server({ hostKeys: [hostKey.private] }, (conn) => {
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('error', () => undefined);
    // Accept the control channel but never welcome: the agent waits, its forwards are live meanwhile.
    conn.on('ready', () => conn.on('session', (accept) => accept().on('subsystem', (acc) => { acc(); })));
    conn.on('request', (accept, _reject, kind) => {
      if (kind !== 'tcpip-forward') return;
      accept?.();
      conn.forwardOut('127.0.0.1', forbidden, 'rogue', 0, (err) => {
        results.push(err ? `forbidden:refused` : 'forbidden:OPENED');
        conn.forwardOut('127.0.0.1', allowedPort, 'rogue', 0, (err2, ch) => {
          if (err2) { results.push('allowed:refused'); done(); return; }
          ch.once('data', (d: Buffer) => { results.push(`allowed:${d.toString()}`); ch.close(); done(); });
          ch.write('ping');
        });
      });
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  await fleet.addHost('rogue1');
  const cfg = await fleet.agentConfig('rogue1', {
    hub: `ssh://127.0.0.1:${port}`, hubFingerprint: fingerprintOfBlob(parsed.getPublicSSH()), allowForwardPorts: [allowedPort],
  });
  const agent = fleet.startAgent('rogue1', cfg);
  await Promise.race([finished, new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${results.join(',')}\n${agent.output()}`)), 15_000))]);
  assert.deepEqual(results, ['forbidden:refused', 'allowed:ping']);
  // Refused inside the agent: ssh2 only accepts forwarded channels for the
  // addresses the agent itself requested (its allowForwardPorts), and the
  // agent's own check behind it would refuse too. The sshd saw nothing.
  assert.equal((sshd.daemon.output().match(/Connection from/g) ?? []).length, sshdConnections);
  await agent.stop();
  server.close();
  echo.close();
});

test('behind NAT: the hub cannot dial the host, yet ssh through the hub reaches its sshd', async (t) => {
  const why = await netnsUnsupportedReason();
  if (why) { t.skip(why); return; }
  const nat = await createNat('bento-ssh');
  const nfleet = await TestFleet.create();
  try {
    const inner = await startSshd({ dir: path.join(nfleet.dir, 'client-sshd'), authorizedKeys: [admin.publicKey], netns: nat.client, port: 22 });
    await nfleet.addHost('natted');
    nfleet.hub = nat.spawnIn(nat.hub, 'hub', process.execPath, [HUB_BIN, 'serve', '--dir', nfleet.fleetDir, '--listen', `${nat.hubAddr}:2222`]);
    await nfleet.waitServing();
    const cfg = await nfleet.agentConfig('natted', { hub: `ssh://${nat.hubAddr}:2222` }); // allowForwardPorts defaults to [22]
    nfleet.agents.set('natted', nat.spawnIn(nat.client, 'agent', process.execPath, [CLIENT_BIN, 'run', '--config', cfg]));
    await nfleet.waitConnected(['natted']);
    const listed = (await nfleet.list())[0]!;
    assert.match(String(listed['remoteAddress']), /^198\.51\.100\.1:/, 'the hub sees the router, not the host');
    // The hub's namespace has no way to the host: a direct TCP connection fails.
    const dial = await nat.exec(nat.hub, process.execPath, ['-e',
      `const s=require('net').connect({host:'${nat.clientAddr}',port:22,timeout:1500});s.on('connect',()=>{console.log('CONNECTED');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(1)});s.on('timeout',()=>{console.log('TIMEOUT');process.exit(1)})`], { timeoutMs: 10_000 });
    assert.notEqual(dial.code, 0, dial.stdout);
    await writeFile(path.join(nfleet.dir, 'known_hosts'), `${inner.knownHostsLine('natted', 22)}\n`);
    const args = sshClientBaseArgs({ dir: nfleet.dir, identityFile: admin.privateKeyPath });
    const r = await run('ssh', [...args, '-o', `ProxyCommand=${process.execPath} ${HUB_BIN} proxy %h 22 --dir ${nfleet.fleetDir}`, 'root@natted', 'ip -4 -o addr show dev c-lan | grep -o "10.99.0.2"']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '10.99.0.2', 'the command ran inside the NATed host');
    await inner.stop();
  } finally {
    await nfleet.close();
    await nat.destroy();
  }
});
