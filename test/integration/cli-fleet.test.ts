// The admin CLI's contract without a running hub: init's refusals, registry
// commands, --json shapes, --help everywhere, and the documented exit codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet, runCli, HUB_BIN, CLIENT_BIN } from '../helpers/fleet.js';
import { tmpDir } from '../helpers/proc.js';
import { hubProgram } from '../../hub/cli/program.js';
import { clientProgram } from '../../client/cli/program.js';

let fleet: TestFleet;
before(async () => { fleet = await TestFleet.create(); });
after(async () => { await fleet?.close(); });

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
    const list = await runCli(HUB_BIN, ['list', '--dir', dir]);
    assert.equal(list.code, 4);
    assert.match(list.stderr, /HUB_NOT_RUNNING/);
  } finally {
    await cleanup();
  }
});

test('hosts, remove-host and fingerprint, with stable --json', async () => {
  const f = await TestFleet.create();
  try {
    const key = await f.addHost('web1', ['--tag', 'web', '--ssh-user', 'admin', '--ssh-port', '2200']);
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
