// The agent's side of several hubs: pinning a list of hub keys
// (hubFingerprints, next to hubFingerprint), and the "spread" endpoint order
// (client/net/endpoint-order.ts): stable per host, even across hosts, and a
// dead hub's hosts spread over the survivors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ssh2 from 'ssh2';
import { validateClientConfig } from '../../client/config.js';
import { parseEndpoint } from '../../client/net/endpoint.js';
import { endpointsToTry, rendezvous } from '../../client/net/endpoint-order.js';
import { pinHostKey } from '../../client/net/host-key-pin.js';
import { unlistedHubs } from '../../client/net/hub-list.js';
import { fingerprintOfBlob } from '../../common/protocol/fingerprint.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';

const FP = `SHA256:${'A'.repeat(43)}`;
const FP2 = `SHA256:${'B'.repeat(43)}`;
const base = { name: 'web1', hub: 'ssh://hub.example:2222' };

test('hubFingerprint, hubFingerprints or both; at least one; each checked', () => {
  assert.deepEqual(validateClientConfig({ ...base, hubFingerprint: FP }).hubFingerprints, [FP]);
  assert.deepEqual(validateClientConfig({ ...base, hubFingerprints: [FP, FP2] }).hubFingerprints, [FP, FP2]);
  const both = validateClientConfig({ ...base, hubFingerprint: FP, hubFingerprints: [FP2, FP] });
  assert.deepEqual(both.hubFingerprints, [FP, FP2]);
  assert.equal(both.hubFingerprint, FP);
  assert.throws(() => validateClientConfig(base), /set "hubFingerprint"/);
  assert.throws(() => validateClientConfig({ ...base, hubFingerprints: [] }), /"hubFingerprints" must list/);
  assert.throws(() => validateClientConfig({ ...base, hubFingerprints: [FP, 'x'] }), /"hubFingerprints"\[1\]/);
  assert.equal(validateClientConfig({ ...base, hubFingerprint: FP }).endpointOrder, 'listed');
  assert.throws(() => validateClientConfig({ ...base, hubFingerprint: FP, endpointOrder: 'random' }), /"endpointOrder"/);
});

test('the pin accepts any listed hub key and names all of them when it refuses one', () => {
  // generateEd25519, not ssh2's generator: that one drops a leading zero byte
  // of about 1 in 256 public keys (see common/platform/ed25519.ts).
  const blob = (): Buffer => (ssh2.utils.parseKey(generateEd25519().public) as ssh2.ParsedKey).getPublicSSH();
  const [a, b, c] = [blob(), blob(), blob()];
  const pin = pinHostKey([fingerprintOfBlob(a), fingerprintOfBlob(b)]);
  assert.equal(pin.verify(a), true);
  assert.equal(pin.verify(b), true);
  assert.equal(pin.verify(c), false, 'a revoked (unlisted) hub key is refused');
  assert.equal(pin.offered, fingerprintOfBlob(c));
});

test('"spread": each host its own stable order; hosts even over hubs; a dead hub\'s hosts even over the survivors', async () => {
  const eps = ['ssh://h1:2222', 'ssh://h2:2222', 'ssh://h3:2222'].map((url) => parseEndpoint({ url }));
  const noDns = async (): Promise<string[]> => [];
  const first = new Map<string, number>();
  const second = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const order = await endpointsToTry(`host${i}`, eps, 'spread', noDns);
    assert.deepEqual(order, await endpointsToTry(`host${i}`, eps, 'spread', noDns), 'stable');
    first.set(order[0]!.url, (first.get(order[0]!.url) ?? 0) + 1);
    if (order[0]!.url === 'ssh://h1:2222') second.set(order[1]!.url, (second.get(order[1]!.url) ?? 0) + 1);
  }
  for (const n of first.values()) assert.ok(n > 850 && n < 1150, `first choices ${[...first.values()]}`);
  const [x, y] = [...second.values()];
  assert.ok(x! > 0.4 * (x! + y!) && y! > 0.4 * (x! + y!), `h1's hosts go to h2 and h3 alike: ${x}/${y}`);
  assert.deepEqual(await endpointsToTry('web1', eps, 'listed', noDns), eps, 'listed keeps the config\'s order');
});

test('"spread": a name with several addresses is one endpoint per address; a proxied endpoint is never resolved here', async () => {
  const dns = async (h: string): Promise<string[]> => (h === 'hubs.example' ? ['10.0.0.1', '10.0.0.2', '10.0.0.3'] : ['10.9.9.9']);
  const eps = [parseEndpoint({ url: 'wss://hubs.example/bento' }), parseEndpoint({ url: 'ssh://other.example:2222', proxy: 'socks5h://127.0.0.1:9050' })];
  const order = await endpointsToTry('web1', eps, 'spread', dns);
  assert.equal(order.length, 4);
  const expanded = order.filter((e) => e.address);
  assert.deepEqual(expanded.map((e) => e.address).sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  assert.ok(expanded.every((e) => e.host === 'hubs.example'), 'TLS and the WebSocket request still name the host');
  assert.equal(order.find((e) => e.proxy)?.address, undefined);
  assert.deepEqual(rendezvous('web1', ['a', 'b', 'c'], (s) => s), rendezvous('web1', ['c', 'b', 'a'], (s) => s), 'the listed order does not matter');
});

test('welcome.hubs: the hubs the config does not list, compared as normalised URLs; nothing for a single hub', () => {
  const eps = [parseEndpoint({ url: 'ssh://hub1.example:2222' }), parseEndpoint({ url: 'wss://hubs.example' })];
  assert.deepEqual(unlistedHubs(eps, undefined), []);
  assert.deepEqual(unlistedHubs(eps, ['ssh://hub1.example', 'wss://hubs.example:443/bento', 'ssh://hub2.example:2222', 'not a url', 'ssh://hub2.example:2222']), ['ssh://hub2.example:2222']);
});
