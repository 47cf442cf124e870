// The admin CLI's contract without a running hub: init's refusals, registry
// commands, --json shapes, --help everywhere, the documented exit codes, and
// the error messages a newcomer meets first (a mistyped option, a wrong
// --dir, a port in use or out of range, a private key given as --key-file,
// an unreadable identityFile).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { TestFleet, runCli, makeKey, HUB_BIN, CLIENT_BIN } from '../helpers/fleet.js';
import { tmpDir } from '../helpers/proc.js';
import { hubProgram } from '../../hub/cli/program.js';
import { clientProgram } from '../../client/cli/program.js';

let fleet: TestFleet;
/** Never altered by a test (the first test takes hub.json away from `fleet`). */
let intact: TestFleet;
before(async () => { [fleet, intact] = await Promise.all([TestFleet.create(), TestFleet.create()]); });
after(async () => { await Promise.all([fleet?.close(), intact?.close()]); });

test('init refuses to overwrite an existing fleet, even one missing hub.json', async () => {
  const again = await fleet.hubCli(['init']);
  assert.equal(again.code, 6);
  assert.match(again.stderr, /FLEET_EXISTS/);
  await unlink(path.join(fleet.fleetDir, 'hub.json'));
  const partial = await fleet.hubCli(['init']);
  assert.equal(partial.code, 6, 'the hub key is still there: init must not replace it');
  assert.match(partial.stderr, /hub_ed25519_key already exists/);
});

test('commands on a directory that is not a fleet exit 4 and say to run init', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    for (const args of [['hosts'], ['fingerprint'], ['add-host', 'x', '--key', 'ssh-ed25519 AAAA']]) {
      const r = await runCli(HUB_BIN, [...args, '--dir', dir]);
      assert.equal(r.code, 4, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /bento-hub init/);
    }
    // Commands that talk to the hub: a wrong --dir is the mistake, not a stopped hub.
    for (const args of [['list'], ['status'], ['trigger', 'web1'], ['proxy', 'web1', '22']]) {
      const r = await runCli(HUB_BIN, [...args, '--dir', dir]);
      assert.equal(r.code, 4, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /is not a fleet directory \(no hub\.json\).*\[FLEET_NOT_INITIALIZED\]/, `${args[0]}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /HUB_NOT_RUNNING|not running/, args[0]);
    }
    // A real fleet whose hub is stopped still says that.
    const stopped = await intact.hubCli(['list']);
    assert.equal(stopped.code, 4);
    assert.match(stopped.stderr, /HUB_NOT_RUNNING/);
  } finally {
    await cleanup();
  }
});

test('an unknown or misused option gets one clean sentence, with the nearest known option', async () => {
  const typo = await runCli(HUB_BIN, ['hosts', '--dri', intact.fleetDir]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /^bento-hub hosts: unknown option --dri \(did you mean --dir\?\) \[USAGE\]\nRun `bento-hub hosts --help` for its options\.\n$/);
  assert.doesNotMatch(typo.stderr, /positional|place it at the end/, 'no parser jargon');
  assert.match((await runCli(HUB_BIN, ['trigger', '--queu', 'web1'])).stderr, /did you mean --queue\?/);
  assert.match((await runCli(HUB_BIN, ['trigger', '--tags', 'web'])).stderr, /did you mean --tag\?/);
  assert.doesNotMatch((await runCli(HUB_BIN, ['hosts', '--frobnicate'])).stderr, /did you mean/, 'nothing close: no guess');
  const missing = await runCli(HUB_BIN, ['hosts', '--dir']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--dir needs a value \(--dir DIR\)/);
  assert.match((await runCli(HUB_BIN, ['hosts', '--json=yes', '--dir', intact.fleetDir])).stderr, /--json takes no value/);
  assert.match((await runCli(CLIENT_BIN, ['check-config', '--confg', 'x.json'])).stderr, /did you mean --config\?/);
  const cmd = await runCli(HUB_BIN, ['stauts']);
  assert.equal(cmd.code, 2);
  assert.match(cmd.stderr, /unknown command "stauts" \(did you mean status\?\)/);
});

test('--listen with a port out of range says so, for init and serve', async () => {
  const { dir, cleanup } = await tmpDir();
  try {
    for (const args of [['init', '--dir', path.join(dir, 'f')], ['serve', '--dir', intact.fleetDir]]) {
      for (const port of ['70000', '0']) {
        const r = await runCli(HUB_BIN, [...args, '--listen', `127.0.0.1:${port}`]);
        assert.equal(r.code, 2, `${args[0]} ${port}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`port ${port} is out of range \\(1\\.\\.65535\\)`), r.stderr);
      }
    }
    assert.match((await runCli(HUB_BIN, ['serve', '--dir', intact.fleetDir, '--ws-listen', '[::1]:123456'])).stderr, /--ws-listen \[::1\]:123456: port 123456 is out of range/);
  } finally {
    await cleanup();
  }
});

test('a listen port in use is ADDRESS_IN_USE (exit 6), naming the address', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const r = await runCli(HUB_BIN, ['serve', '--dir', intact.fleetDir, '--listen', `127.0.0.1:${port}`], { timeoutMs: 30_000 });
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, new RegExp(`^bento-hub serve: 127\\.0\\.0\\.1:${port} is already in use by another program.*\\[ADDRESS_IN_USE\\]$`, 'm'));
    // The failed start left no admin socket behind: the next command says the hub is not running.
    assert.match((await intact.hubCli(['list'])).stderr, /HUB_NOT_RUNNING/);
  } finally {
    blocker.close();
  }
});

test('add-host --key-file with a private key says to give the .pub, and registers nothing', async () => {
  const key = await makeKey(intact.dir, 'privkey-host');
  const r = await intact.hubCli(['add-host', 'privkey-host', '--key-file', key.keyPath]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`${key.keyPath} is a private key: give its public half instead \\(--key-file ${key.keyPath}\\.pub`));
  assert.match(r.stderr, /\[INVALID_KEY\]/);
  assert.equal((await intact.hubCli(['hosts', '--json'])).stdout.includes('privkey-host'), false);
  assert.equal((await intact.hubCli(['add-host', 'privkey-host', '--key-file', `${key.keyPath}.pub`])).code, 0);
  assert.equal((await intact.hubCli(['remove-host', 'privkey-host'])).code, 0);
});

test('bento-client check-config reads identityFile as the agent would', async () => {
  const key = await makeKey(intact.dir, 'idcheck');
  const cfg = async (identityFile: string): Promise<string> => {
    const file = path.join(intact.dir, 'idcheck.json');
    await writeFile(file, JSON.stringify({ name: 'idcheck', hub: 'ssh://127.0.0.1:2222', hubFingerprint: intact.fingerprint, identityFile }));
    return file;
  };
  const ok = await runCli(CLIENT_BIN, ['check-config', '--config', await cfg(key.keyPath)]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /identity: .*idcheck_ed25519 \(ssh-ed25519, SHA256:/);
  const cases: Array<[string, RegExp]> = [
    [path.join(intact.dir, 'no-such-key'), /cannot read it: no such file/],
    [`${key.keyPath}.pub`, /is a public key; give the private key/],
    [intact.dir, /cannot read it/],
  ];
  for (const [file, why] of cases) {
    const r = await runCli(CLIENT_BIN, ['check-config', '--config', await cfg(file)]);
    assert.equal(r.code, 2, `${file}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, why, file);
    assert.match(r.stderr, /"identityFile".*\[CONFIG_INVALID\]/);
  }
  // Where the key cannot be visible (the NixOS module's check inside a Nix build), it can be left out.
  const skipped = await runCli(CLIENT_BIN, ['check-config', '--skip-identity', '--config', await cfg(path.join(intact.dir, 'no-such-key'))]);
  assert.equal(skipped.code, 0, skipped.stderr);
  assert.match(skipped.stdout, /identity: .*no-such-key \(not checked: --skip-identity\)/);
});

test('bento-client --help lists only the codes the agent can return', async () => {
  const r = await runCli(CLIENT_BIN, ['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /CONNECT_FAILED/);
  for (const hubOnly of ['HUB_NOT_RUNNING', 'FLEET_NOT_INITIALIZED', 'UNKNOWN_HOST', 'NO_PREBUILT', 'HOST_OFFLINE']) assert.doesNotMatch(r.stdout, new RegExp(hubOnly));
});

test('hosts, remove-host and fingerprint, with stable --json', async () => {
  const f = await TestFleet.create();
  try {
    const key = await f.addHost('web1', ['--tag', 'web', '--ssh-user', 'admin', '--ssh-port', '2200']);
    await f.addHost('db1');
    const table = (await f.hubCli(['hosts'])).stdout;
    assert.doesNotMatch(table, /@:/, 'no empty host in the ssh hint');
    assert.match(table, /^web1 .* admin, 2200$/m);
    assert.match(table, /^db1 .* root, 22$/m);
    assert.equal((await f.hubCli(['remove-host', 'db1'])).code, 0);
    const hosts = JSON.parse((await f.hubCli(['hosts', '--json'])).stdout) as { hosts: Array<Record<string, unknown>> };
    assert.equal(hosts.hosts.length, 1);
    assert.deepEqual(hosts.hosts[0]!['tags'], ['web']);
    assert.deepEqual(hosts.hosts[0]!['ssh'], { user: 'admin', port: 2200 });
    assert.match(String((hosts.hosts[0]!['fingerprints'] as string[])[0]), /^SHA256:/);
    const fp = JSON.parse((await f.hubCli(['fingerprint', '--json'])).stdout) as { fingerprint: string };
    assert.equal(fp.fingerprint, f.fingerprint);
    assert.equal((await f.hubCli(['remove-host', 'web1'])).code, 0);
    const gone = await f.hubCli(['remove-host', 'web1']);
    assert.equal(gone.code, 5);
    assert.equal((await f.hubCli(['add-host', 'web1', '--key', key.publicKey])).code, 0, 'the key is free again');
    const bad = await f.hubCli(['add-host', 'web2', '--key', 'ssh-ed25519 notbase64!']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /INVALID_KEY/);
    const json = await f.hubCli(['add-host', 'web2', '--json']);
    assert.equal(json.code, 2);
    assert.deepEqual(Object.keys(JSON.parse(json.stdout) as object), ['error'], '--json errors are JSON on stdout');
  } finally {
    await f.close();
  }
});

test('every command answers --help with exit 0; unknown commands and options exit 2', async () => {
  for (const [bin, prog] of [[HUB_BIN, hubProgram], [CLIENT_BIN, clientProgram]] as const) {
    for (const c of prog.commands) {
      const r = await runCli(bin, [c.name, '--help']);
      assert.equal(r.code, 0, `${prog.bin} ${c.name} --help`);
      assert.match(r.stdout, new RegExp(`^Usage: ${prog.bin} ${c.name}`));
    }
    assert.equal((await runCli(bin, ['frobnicate'])).code, 2);
    assert.equal((await runCli(bin, [prog.commands[0]!.name, '--no-such-flag'])).code, 2);
  }
});
