import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateClientConfig } from '../../client/config.js';
import { parseEndpoint } from '../../client/net/endpoint.js';
import { rebuildArgv } from '../../client/jobs/argv.js';
import { Backoff } from '../../client/net/backoff.js';
import { prebuiltSteps } from '../../client/jobs/prebuilt.js';

const FP = `SHA256:${'A'.repeat(43)}`;
const base = { name: 'web1', hub: 'ssh://hub.example:2222', hubFingerprint: FP };

test('a minimal config gets NixOS defaults', () => {
  const c = validateClientConfig(base);
  assert.equal(c.identityFile, '/etc/ssh/ssh_host_ed25519_key');
  assert.deepEqual(c.rebuildCommand, ['nixos-rebuild']);
  assert.deepEqual(c.allowForwardPorts, [22]);
  assert.equal(c.endpoints[0]!.label, 'ssh://hub.example:2222');
});

test('config errors name the field and the fix', () => {
  assert.throws(() => validateClientConfig({ ...base, name: 'Web_1' }), /"name".*upper-case/);
  assert.throws(() => validateClientConfig({ ...base, hubFingerprint: 'abc' }), /bento-hub fingerprint/);
  assert.throws(() => validateClientConfig({ ...base, hub: 'http://x' }), /unsupported scheme/);
  assert.throws(() => validateClientConfig({ ...base, flake: '/etc/nixos' }), /PATH#ATTRIBUTE/);
  assert.throws(() => validateClientConfig({ ...base, flake: '/a#b', configuration: '/c' }), /not both/);
  assert.throws(() => validateClientConfig({ ...base, rebuildCommand: 'nixos-rebuild switch' }), /argv array/);
  assert.throws(() => validateClientConfig({ ...base, hubb: 1 }), /unknown setting "hubb"/);
  assert.throws(() => validateClientConfig({ name: 'web1', hubFingerprint: FP }), /set "hub"/);
});

test('healthCommand: an argv with its timing, or none; bad values name the setting and the fix', () => {
  assert.equal(validateClientConfig(base).health, null);
  assert.deepEqual(validateClientConfig({ ...base, healthCommand: ['/bin/true'] }).health, { command: ['/bin/true'], timeoutMs: 60_000, intervalMs: 2_000 });
  assert.throws(() => validateClientConfig({ ...base, healthCommand: 'curl -f http://x' }), /"healthCommand" must be a non-empty argv array of non-empty strings, e\.g\. \["\/run\/current-system\/sw\/bin\/systemctl", "is-system-running"\], or null/);
  assert.throws(() => validateClientConfig({ ...base, healthCommand: [] }), /"healthCommand" must be a non-empty argv array/);
  assert.throws(() => validateClientConfig({ ...base, healthCommand: ['/bin/true'], healthTimeoutMs: 10 }), /"healthTimeoutMs" must be an integer in 1000\.\.3600000/);
  assert.throws(() => validateClientConfig({ ...base, healthIntervalMs: 0 }), /"healthIntervalMs" must be an integer in 100\.\.600000/);
});

test('endpoints: carriers, default ports, proxies and .onion rules', () => {
  assert.equal(parseEndpoint({ url: 'wss://hub.example' }).port, 443);
  assert.equal(parseEndpoint({ url: 'wss://hub.example' }).path, '/bento');
  assert.equal(parseEndpoint({ url: 'ws://hub.example:8080/x' }).path, '/x');
  assert.equal(parseEndpoint({ url: 'ssh://[::1]:2222' }).host, '::1');
  const tor = parseEndpoint({ url: 'ssh://abcdefghijklmnop.onion:2222', proxy: 'socks5h://127.0.0.1:9050' });
  assert.equal(tor.proxy?.kind, 'socks5h');
  assert.match(tor.label, /^socks5h:\/\/127\.0\.0\.1:9050 -> ssh:\/\/abcdefghijklmnop\.onion:2222$/);
  assert.throws(() => parseEndpoint({ url: 'ssh://x.onion:2222', proxy: 'socks5://127.0.0.1:9050' }), /use socks5h/);
  assert.throws(() => parseEndpoint({ url: 'ssh://x.onion:2222' }), /needs "proxy"/);
  const http = parseEndpoint({ url: 'ssh://hub:22', proxy: 'http://u%40x:p%3Aw@proxy:3128' });
  assert.deepEqual([http.proxy?.user, http.proxy?.pass], ['u@x', 'p:w']);
  assert.ok(!http.label.includes('p:w'), 'labels never carry credentials');
  assert.throws(() => parseEndpoint({ url: 'ssh://hub', proxy: 'ftp://p' }), /unsupported proxy scheme/);
  assert.throws(() => parseEndpoint({ url: 'ssh://hub', proxy: 'http://p', proxyCommand: 'nc' }), /not both/);
  assert.throws(() => parseEndpoint({ url: 'ssh://root:pw@hub' }), /credentials/);
});

test('several endpoints keep their order', () => {
  const c = validateClientConfig({ name: 'web1', hubFingerprint: FP, endpoints: ['ssh://a:1', { url: 'wss://b/bento', proxy: 'http://p:3128' }] });
  assert.deepEqual(c.endpoints.map((e) => e.label), ['ssh://a:1', 'http://p:3128 -> wss://b:443/bento']);
});

test('rebuild argv: action appended, flake or configuration flags after it', () => {
  assert.deepEqual(rebuildArgv({ rebuildCommand: ['nixos-rebuild'], flake: '/etc/nixos#web1', configuration: null }, 'switch'), ['nixos-rebuild', 'switch', '--flake', '/etc/nixos#web1']);
  assert.deepEqual(rebuildArgv({ rebuildCommand: ['/x/rebuild'], flake: null, configuration: '/c.nix' }, 'boot'), ['/x/rebuild', 'boot', '-I', 'nixos-config=/c.nix']);
});

test('rebootMethod: reboot by default, kexec on request, anything else refused', () => {
  assert.equal(validateClientConfig(base).rebootMethod, 'reboot');
  assert.equal(validateClientConfig({ ...base, rebootMethod: 'kexec' }).rebootMethod, 'kexec');
  assert.throws(() => validateClientConfig({ ...base, rebootMethod: 'poweroff' }), /"rebootMethod" must be "reboot" or "kexec"/);
  assert.throws(() => validateClientConfig({ ...base, rebootMethod: true }), /rebootMethod/);
});

test('prebuilt steps: substitute through the tunnel (or the host\'s substituters), set the profile, activate', () => {
  const p = `/nix/store/${'a'.repeat(32)}-nixos-system-web1`;
  const tunnel = { cacheUrl: 'http://127.0.0.1:5001', systemProfile: '/nix/var/nix/profiles/system' };
  assert.deepEqual(prebuiltSteps(tunnel, p, 'switch').map((s) => s.argv), [
    ['nix', '--extra-experimental-features', 'nix-command', 'copy', '--from', 'http://127.0.0.1:5001', p],
    ['nix-env', '-p', '/nix/var/nix/profiles/system', '--set', p],
    [`${p}/bin/switch-to-configuration`, 'switch'],
  ]);
  const own = { cacheUrl: null, systemProfile: '/p' };
  assert.deepEqual(prebuiltSteps(own, p, 'test').map((s) => s.argv), [['nix-store', '--realise', p], [`${p}/bin/switch-to-configuration`, 'test']]);
  assert.deepEqual(prebuiltSteps(own, p, 'boot').map((s) => s.argv[0]), ['nix-store', 'nix-env', `${p}/bin/switch-to-configuration`]);
  assert.deepEqual(prebuiltSteps(own, p, 'build').map((s) => s.argv[0]), ['nix-store'], 'build only fetches');
  assert.throws(() => prebuiltSteps(own, `${p}/bin`, 'switch'), /not a store path/);
});

test('backoff: capped, exponential ceiling, full jitter, never zero', () => {
  const lo = new Backoff({ initialMs: 1000, maxMs: 60_000 }, () => 0);
  const hi = new Backoff({ initialMs: 1000, maxMs: 60_000 }, () => 1);
  const lows = Array.from({ length: 10 }, () => lo.next());
  const highs = Array.from({ length: 10 }, () => hi.next());
  assert.ok(lows.every((d) => d === 100), 'the floor keeps retries from spinning');
  assert.deepEqual(highs.slice(0, 7), [1000, 2000, 4000, 8000, 16000, 32000, 60000]);
  assert.equal(highs[9], 60000);
  hi.reset();
  assert.equal(hi.next(), 1000);
});
