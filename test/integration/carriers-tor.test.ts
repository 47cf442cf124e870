// Tor, offline and real: a private Tor network (3 authorities, relays, an
// onion service, a client tor) from Debian's tor. The hub is published as a
// v3 onion service; the agent reaches it through tor's SocksPort with
// socks5h (the .onion name is never resolved locally), and a trigger works
// end to end. A wrong hub key is refused on this path too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';
import { startTorNetwork, type TorNetwork } from '../fixtures/tor.js';

let fleet: TestFleet;
let tor: TorNetwork;

before(async () => {
  fleet = await TestFleet.create({ heartbeatMs: 5000 });
  await fleet.startHub();
  tor = await startTorNetwork({ dir: fleet.dir, targetPort: fleet.sshPort, onionPort: 2222 });
  const ms = await tor.waitReady(150_000);
  process.stderr.write(`# private tor network ready in ${ms} ms\n`);
});
after(async () => {
  // Tor first: its processes write into the fleet's temp dir until they exit.
  await tor?.stop();
  await fleet?.close();
});

test('an agent reaches the hub at its .onion address through tor, and trigger works end to end', async () => {
  assert.match(tor.onionHostname, /^[a-z2-7]{56}\.onion$/);
  await fleet.addHost('tor1');
  const endpoint = { url: `ssh://${tor.onionHostname}:${tor.onionPort}`, proxy: `socks5h://127.0.0.1:${tor.socksPort}` };
  fleet.startAgent('tor1', await fleet.agentConfig('tor1', { hub: undefined, endpoints: [endpoint], connectTimeoutMs: 30_000, rebuildCommand: ['/bin/echo', 'rebuilt over tor'] }));
  await fleet.waitConnected(['tor1'], 90_000);
  const row = (await fleet.list()).find((c) => c.name === 'tor1')!;
  assert.equal(row['carrier'], 'ssh');
  assert.equal(row['endpoint'], `socks5h://127.0.0.1:${tor.socksPort} -> ssh://${tor.onionHostname}:${tor.onionPort}`);
  // The onion service delivers connections from the service tor on loopback.
  assert.match(String(row['remoteAddress']), /^127\.0\.0\.1:/);
  const r = await fleet.hubCli(['trigger', 'tor1', '--action', 'test'], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rebuilt over tor test/);
});

test('through tor, a hub with another key is still refused', async () => {
  const endpoint = { url: `ssh://${tor.onionHostname}:${tor.onionPort}`, proxy: `socks5h://127.0.0.1:${tor.socksPort}` };
  const cfg = await fleet.agentConfig('tor1', { hub: undefined, endpoints: [endpoint], hubFingerprint: `SHA256:${'C'.repeat(43)}`, stateDir: path.join(fleet.dir, 'wrong-tor'), connectTimeoutMs: 30_000 });
  const a = fleet.startAgent('tor-wrong', cfg);
  await waitFor('HOST_KEY_MISMATCH over tor', () => a.output().includes('HOST_KEY_MISMATCH'), 60_000);
  assert.ok(a.output().includes(fleet.fingerprint));
  await a.stop();
});
