// Content shared by two real hubs (`bento-hub serve`, fleets A and B, one
// NATS cluster of 3, the same hub key so one agent config fits both):
//   - add-host at A, the agent authenticates at B;
//   - deploy at A, the agent pulls it from B (real bento-client, real SFTP);
//   - a log uploaded at B, `logs` at A;
//   - build at A, `trigger --prebuilt` at B sends A's store path;
//   - `bento-hub proxy` at B to a host whose tunnel A holds: real ssh through
//     it to a real sshd, a 4 MiB transfer both ways, refusals in the host's
//     words, and a host no hub holds.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { generateKey, sshClientBaseArgs, startSshd, type KeyPair, type Sshd } from '../fixtures/sshd.js';
import { CLIENT_BIN, HUB_BIN, runCli, type TestFleet } from '../helpers/fleet.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { helloFor, rawAgent } from '../helpers/raw-agent.js';
import { clusterFleet, dropPrefix, freshPrefix } from './cluster-content-helpers.js';

const STORE_PATH = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-app1-1';

let nats: NatsCluster;
let prefix: string;
let a: TestFleet;
let b: TestFleet;
let sshd: Sshd;
let admin: KeyPair;

before(async () => {
  nats = await startNatsCluster();
  prefix = freshPrefix('hubs');
  const hubSettings = { publish: { buildCommand: ['/bin/sh', '-c', `echo "building $1"; echo ${STORE_PATH}`, 'build'] } };
  a = await clusterFleet(nats, prefix, 'huba', { hubSettings });
  b = await clusterFleet(nats, prefix, 'hubb', { hubSettings });
  // One hub key for both (agents pin one fingerprint here).
  for (const f of ['hub_ed25519_key', 'hub_ed25519_key.pub']) await copyFile(path.join(a.fleetDir, f), path.join(b.fleetDir, f));
  b.fingerprint = a.fingerprint;
  await a.startHub();
  await b.startHub();
  admin = await generateKey(a.dir, 'admin_ed25519');
  sshd = await startSshd({ dir: a.dir, authorizedKeys: [admin.publicKey] });
});

after(async () => {
  await sshd?.stop();
  await a?.close();
  await b?.close();
  if (nats) await dropPrefix(nats, prefix).catch(() => undefined);
  await nats?.stop();
});

/** An agent config of fleet A's host NAME that connects to FLEET's hub. */
async function agentAt(fleet: TestFleet, name: string, extra: Record<string, unknown> = {}): Promise<string> {
  return a.agentConfig(name, { hub: `ssh://127.0.0.1:${fleet.sshPort}`, autoApply: false, pullIntervalMs: 0, ...extra });
}

test('add-host at A: the agent authenticates at B; deploy at A: the agent pulls it from B', async () => {
  await a.addHost('web1');
  await mkdir(path.join(a.fleetDir, 'hosts', 'web1'), { recursive: true });
  await writeFile(path.join(a.fleetDir, 'hosts', 'web1', 'configuration.nix'), '{ ... }: { networking.hostName = "web1"; }\n');
  const cfg = await agentAt(b, 'web1');
  a.startAgent('web1', cfg);
  await b.waitConnected(['web1']);
  // A does not hold web1 (a hub's list may show every hub's hosts, each with the hub holding it).
  assert.deepEqual((await a.list()).filter((c) => c.name === 'web1' && c['hub'] !== 'hubb'), [], 'A does not hold web1');

  const dep = await a.hubCli(['deploy', '--json'], 60_000);
  assert.equal(dep.code, 0, dep.stderr);
  const hash = (JSON.parse(dep.stdout) as { hosts: Array<{ hash: string }> }).hosts[0]!.hash;
  // B's mirror serves it within a moment; the agent's own pull over a fresh connection to B installs it.
  await waitFor('B serves the deploy', async () => {
    const v = JSON.parse(await readFile(path.join(b.fleetDir, 'jails', 'web1', 'version.json'), 'utf8').catch(() => '{}')) as { hash?: string };
    return v.hash === hash || null;
  }, 15_000);
  const pull = await runCli(CLIENT_BIN, ['pull', '--config', cfg, '--json'], { timeoutMs: 60_000 });
  assert.equal(pull.code, 0, pull.stdout + pull.stderr);
  assert.match(pull.stdout, new RegExp(hash));
  const installed = await readFile(path.join(a.dir, 'state-web1', 'config', 'configuration.nix'), 'utf8');
  assert.match(installed, /networking.hostName = "web1"/);
});

test('a log uploaded at B is listed and shown by `logs` at A', async () => {
  const name = '20250102-030405_nixos-system-web1-1_g7_success.log.gz';
  const outbox = path.join(a.dir, 'state-web1', 'pull', 'logs-outbox');
  await mkdir(outbox, { recursive: true });
  await writeFile(path.join(outbox, name), gzipSync('# job abc\nbuilding the system configuration...\ndone\n'));
  const cfg = path.join(a.dir, 'web1.json');
  const pull = await runCli(CLIENT_BIN, ['pull', '--config', cfg, '--json'], { timeoutMs: 60_000 });
  assert.equal(pull.code, 0, pull.stdout + pull.stderr);
  const list = await waitFor('the log listed at A', async () => {
    const r = await a.hubCli(['logs', 'web1', '--list', '--json']);
    const logs = (JSON.parse(r.stdout || '{"logs":[]}') as { logs: Array<{ name: string; outcome: string; generation: number }> }).logs;
    return logs.some((l) => l.name === name) ? logs : null;
  }, 15_000);
  assert.deepEqual(list.map((l) => [l.name, l.outcome, l.generation]), [[name, 'success', 7]]);
  const show = await a.hubCli(['logs', 'web1']);
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.stdout, '# job abc\nbuilding the system configuration...\ndone\n');
  // It left B's jail for the archive: B has no copy of its own, A never had one.
  await waitFor('moved out of B\'s jail', async () => !(await readFile(path.join(b.fleetDir, 'jails', 'web1', 'logs', name)).catch(() => null)) || null);
});

test('build at A, trigger --prebuilt at B: B sends the store path A built', async () => {
  await a.addHost('app1');
  await mkdir(path.join(a.fleetDir, 'hosts', 'app1'), { recursive: true });
  await writeFile(path.join(a.fleetDir, 'hosts', 'app1', 'configuration.nix'), '{ ... }: { }\n');
  const built = await a.hubCli(['build', 'app1', '--json'], 60_000);
  assert.equal(built.code, 0, built.stdout + built.stderr);
  const raw = await rawAgent({ port: b.sshPort, name: 'app1', keyPath: a.keys.get('app1')!.keyPath });
  try {
    raw.channel.write(helloFor('app1', { capabilities: ['jobs', 'reverse-forward', 'prebuilt'] }));
    await waitFor('app1 at B', () => /"type":"welcome"/.test(raw.received()) || null);
    // The hand-driven agent never answers the job: only what B accepted and sent matters here.
    const t = await b.hubCli(['trigger', 'app1', '--prebuilt', '--json']);
    const accepted = t.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['ev'] === 'accepted');
    assert.equal(accepted?.['storePath'], STORE_PATH, t.stdout + t.stderr);
    await waitFor('job.start with the store path', () => raw.received().includes(`"storePath":"${STORE_PATH}"`) || null);
  } finally {
    raw.end();
  }
});

interface Run { code: number | null; stdout: string; stderr: string }

function run(cmd: string, args: string[], input = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

test('proxy at B to a host whose tunnel A holds: real ssh to a real sshd, bulk both ways, the host\'s refusals, and a host no hub holds', async () => {
  await a.addHost('db1', ['--ssh-port', String(sshd.port)]);
  a.startAgent('db1', await agentAt(a, 'db1', { allowForwardPorts: [sshd.port] }));
  await a.waitConnected(['db1']);
  await writeFile(path.join(a.dir, 'known_hosts'), `${sshd.knownHostsLine('db1', 22)}\n`);
  const base = sshClientBaseArgs({ dir: a.dir, identityFile: admin.privateKeyPath });
  const proxyAtB = `${process.execPath} ${HUB_BIN} proxy %h ${sshd.port} --dir ${b.fleetDir}`;

  const r = await run('ssh', [...base, '-o', `ProxyCommand=${proxyAtB}`, 'root@db1', 'echo "via B: $(id -un)"']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'via B: root\n');
  // Bulk both ways through the relay's flow control.
  const blob = Buffer.alloc(4 << 20, 'y').toString();
  const t0 = Date.now();
  const big = await run('ssh', [...base, '-o', `ProxyCommand=${proxyAtB}`, 'root@db1', 'wc -c'], blob);
  const upMs = Date.now() - t0;
  assert.equal(big.code, 0, big.stderr);
  assert.equal(big.stdout.trim(), String(4 << 20));
  const t1 = Date.now();
  const down = await run('ssh', [...base, '-o', `ProxyCommand=${proxyAtB}`, 'root@db1', 'head -c 4194304 /dev/zero | sha256sum']);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = Date.now();
    await run('ssh', [...base, '-o', `ProxyCommand=${proxyAtB}`, 'root@db1', 'true']);
    times.push(Date.now() - t);
  }
  console.log(`# through hub B's relay to A: ssh root@db1 true ${times.join(', ')} ms (includes starting the node CLI); 4 MiB up ${upMs} ms, 4 MiB down ${Date.now() - t1 - times.reduce((x, y) => x + y, 0)} ms`);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /^bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8/);
  // The admin's side closes first (stdin EOF): the host's answer still arrives through both hubs.
  for (let i = 0; i < 3; i++) {
    const early = await run(process.execPath, [HUB_BIN, 'proxy', 'db1', String(sshd.port), '--dir', b.fleetDir]);
    assert.match(early.stdout, /^SSH-2\.0-OpenSSH/, `attempt ${i}: ${early.stderr}`);
  }
  // A port the host does not allow: refused by the holding hub, reported by B with the same code.
  const other = await freePort();
  const no = await run(process.execPath, [HUB_BIN, 'proxy', 'db1', String(other), '--dir', b.fleetDir]);
  assert.equal(no.code, 1, no.stderr);
  assert.match(no.stderr, new RegExp(`does not offer port ${other} \\(its agent allows: ${sshd.port}\\) \\[FORBIDDEN\\]`));
  // Registered, but connected to no hub.
  await a.addHost('off1');
  const off = await run(process.execPath, [HUB_BIN, 'proxy', 'off1', '22', '--dir', b.fleetDir]);
  assert.equal(off.code, 3, off.stderr);
  assert.match(off.stderr, /"off1" is not connected to any hub of the cluster \[HOST_OFFLINE\]/);
});
