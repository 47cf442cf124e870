// What the hub refuses, checked with OpenSSH's own client and with the real
// agent: shells, exec, port forwards, unknown keys, a key claiming another
// host, bad host names; and the agent refusing a hub with another key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { TestFleet, makeKey, runCli, HUB_BIN, type HostKey } from '../helpers/fleet.js';
import { waitFor, sleep } from '../helpers/proc.js';

const execFileP = promisify(execFile);
let fleet: TestFleet;
let web1: HostKey;

before(async () => {
  fleet = await TestFleet.create();
  web1 = await fleet.addHost('web1');
  await fleet.addHost('web2');
  await fleet.startHub();
});
after(async () => { await fleet?.close(); });

/** OpenSSH client against the hub; returns exit code and stderr. */
async function ssh(user: string, key: string, args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  const base = ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${path.join(fleet.dir, 'kh')}`,
    '-o', 'ConnectTimeout=5', '-o', 'IdentitiesOnly=yes', '-i', key, '-p', String(fleet.sshPort)];
  try {
    const r = await execFileP('ssh', [...base, ...args, `${user}@127.0.0.1`].concat(args.includes('-N') ? [] : ['true']), { timeout: 20_000 });
    return { code: 0, stderr: r.stderr, stdout: r.stdout };
  } catch (err) {
    const e = err as { code?: number; stderr?: string; stdout?: string; killed?: boolean };
    return { code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? '', stdout: e.stdout ?? '' };
  }
}

test('OpenSSH exec with a registered key is authenticated but refused', async () => {
  const r = await ssh('web1', web1.keyPath, []);
  assert.notEqual(r.code, 0);
  assert.doesNotMatch(r.stderr, /Permission denied/, 'the key itself is valid');
  assert.match(r.stderr, /exec request failed|channel 0: open failed|failed/i);
});

test('OpenSSH shell with a pty is refused', async () => {
  const r = await ssh('web1', web1.keyPath, ['-tt', '-o', 'RequestTTY=force']);
  assert.notEqual(r.code, 0);
});

test('OpenSSH local port forward (direct-tcpip) is refused', async () => {
  // -W asks for a direct-tcpip channel and pipes it to stdio: a refusal ends ssh at once.
  const r = await ssh('web1', web1.keyPath, ['-W', '127.0.0.1:22']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /administratively prohibited|open failed|stdio forwarding failed/i);
});

test('OpenSSH remote forward on a public address is refused', async () => {
  const r = await ssh('web1', web1.keyPath, ['-N', '-o', 'ExitOnForwardFailure=yes', '-R', '0.0.0.0:40022:127.0.0.1:22']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /remote port forwarding failed|forwarding failed/i);
});

test('an unknown key is refused', async () => {
  const stranger = await makeKey(fleet.dir, 'stranger');
  const r = await ssh('web1', stranger.keyPath, []);
  assert.equal(r.code, 255);
  assert.match(r.stderr, /Permission denied \(publickey\)/);
});

test("web1's key cannot log in as web2", async () => {
  const r = await ssh('web2', web1.keyPath, []);
  assert.equal(r.code, 255);
  assert.match(r.stderr, /Permission denied \(publickey\)/);
});

test('a user name that is not a DNS label is refused at login and at add-host', async () => {
  const r = await ssh('../web1', web1.keyPath, []);
  assert.equal(r.code, 255);
  for (const bad of ['../etc', 'Web1', 'a/b', 'x'.repeat(64), 'web_1', 'web-', '']) {
    const add = await runCli(HUB_BIN, ['add-host', bad, '--key', web1.publicKey, '--dir', fleet.fleetDir]);
    assert.equal(add.code, 2, `add-host ${bad}: ${add.stderr}`);
    assert.match(add.stderr, /INVALID_HOST_NAME/);
  }
  // A leading hyphen never even reaches the name check: it reads as an option.
  const dash = await runCli(HUB_BIN, ['add-host', '-web', '--key', web1.publicKey, '--dir', fleet.fleetDir]);
  assert.equal(dash.code, 2);
  const dup = await fleet.hubCli(['add-host', 'web3', '--key', web1.publicKey]);
  assert.equal(dup.code, 6, 'one key identifies one host');
  assert.match(dup.stderr, /KEY_IN_USE/);
});

test('the agent refuses a hub whose key does not match the pinned fingerprint, and says what it was offered', async () => {
  const wrong = 'SHA256:' + 'A'.repeat(43);
  const cfg = await fleet.agentConfig('web1', { hubFingerprint: wrong });
  const agent = fleet.startAgent('web1', cfg);
  await waitFor('HOST_KEY_MISMATCH in agent log', () => agent.output().includes('HOST_KEY_MISMATCH'), 10_000);
  assert.ok(agent.output().includes(fleet.fingerprint), 'the error names the fingerprint the hub offered');
  await sleep(500);
  assert.deepEqual(await fleet.list(), [], 'it never became a connected client');
  await agent.stop();
});

test('an agent with web1\'s key claiming to be web2 is refused', async () => {
  const cfg = await fleet.agentConfig('web2', { identityFile: web1.keyPath });
  const agent = fleet.startAgent('web2', cfg);
  await waitFor('AUTH_REJECTED in agent log', () => agent.output().includes('AUTH_REJECTED'), 10_000);
  assert.deepEqual(await fleet.list(), []);
  await agent.stop();
});

test('after all that, a correctly configured agent still connects', async () => {
  const cfg = await fleet.agentConfig('web1');
  fleet.startAgent('web1', cfg);
  await fleet.waitConnected(['web1']);
});
