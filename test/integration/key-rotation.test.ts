// Key rotation with `bento-hub host-keys`, against a running hub and real
// agents: add the new key, the host logs in with it; remove the old one, a
// login with it is refused; tags survive; the last key and another host's key
// are refused with their documented exit codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestFleet, makeKey } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';

let fleet: TestFleet;
before(async () => {
  fleet = await TestFleet.create({ heartbeatMs: 1000 });
  await fleet.addHost('web1', ['--tag', 'web']);
  await fleet.addHost('web2');
  await fleet.startHub();
});
after(async () => { await fleet?.close(); });

test('add the new key, switch to it, remove the old one; the hub follows at each login', async () => {
  const oldKey = fleet.keys.get('web1')!;
  const newKey = await makeKey(fleet.dir, 'web1-new');
  const add = await fleet.hubCli(['host-keys', 'web1', '--add-file', `${newKey.keyPath}.pub`, '--json']);
  assert.equal(add.code, 0, add.stderr);
  assert.deepEqual((JSON.parse(add.stdout) as { fingerprints: string[] }).fingerprints, [fingerprintOfKeyLine(oldKey.publicKey), fingerprintOfKeyLine(newKey.publicKey)]);

  // The host switches to its new key: the running hub accepts it.
  let agent = fleet.startAgent('web1', await fleet.agentConfig('web1', { identityFile: newKey.keyPath, rebuildCommand: ['/bin/true'] }));
  await fleet.waitConnected(['web1']);
  await agent.stop();

  const rm = await fleet.hubCli(['host-keys', 'web1', '--remove', fingerprintOfKeyLine(oldKey.publicKey)]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(rm.stdout.trim(), `web1: ${fingerprintOfKeyLine(newKey.publicKey)}`);

  // The old key no longer logs in; the new one does; the tag is still there.
  const stale = fleet.startAgent('web1-old', await fleet.agentConfig('web1', { identityFile: oldKey.keyPath, rebuildCommand: ['/bin/true'] }));
  await waitFor('old key refused', () => stale.output().includes('AUTH_REJECTED'), 10_000);
  await stale.stop();
  agent = fleet.startAgent('web1', await fleet.agentConfig('web1', { identityFile: newKey.keyPath, rebuildCommand: ['/bin/true'] }));
  await fleet.waitConnected(['web1']);
  const byTag = await fleet.hubCli(['trigger', '--tag', 'web']);
  assert.equal(byTag.code, 0, byTag.stderr);
  await agent.stop();
});

test('refusals: the last key, another host\'s key, an unknown host, a key it does not have, a malformed key', async () => {
  const only = (await fleet.hubCli(['host-keys', 'web1', '--json'])).stdout;
  const fp = (JSON.parse(only) as { fingerprints: string[] }).fingerprints;
  assert.equal(fp.length, 1);
  const last = await fleet.hubCli(['host-keys', 'web1', '--remove', fp[0]!]);
  assert.equal(last.code, 2);
  assert.match(last.stderr, /must keep at least one key/);
  const stolen = await fleet.hubCli(['host-keys', 'web1', '--add', fleet.keys.get('web2')!.publicKey]);
  assert.equal(stolen.code, 6);
  assert.match(stolen.stderr, /KEY_IN_USE/);
  const unknown = await fleet.hubCli(['host-keys', 'nope', '--add', fleet.keys.get('web2')!.publicKey]);
  assert.equal(unknown.code, 5);
  const missing = await fleet.hubCli(['host-keys', 'web1', '--remove', 'SHA256:AAAA']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /has no key SHA256:AAAA/);
  const bad = await fleet.hubCli(['host-keys', 'web1', '--add', 'ssh-ed25519 not-a-key']);
  assert.equal(bad.code, 2, bad.stderr);
});
