import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateHubConfig, parseHostPort } from '../../hub/fleet/hub-config.js';
import { addHost, removeHost, normaliseKey } from '../../hub/fleet/registry.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';

const key = (): string => generateEd25519().public;

test('hub.json: defaults, unknown keys and bad values are refused', () => {
  assert.equal(validateHubConfig({}).listen, '0.0.0.0:2222');
  assert.throws(() => validateHubConfig({ lisen: 'x' }), /unknown setting "lisen"/);
  assert.throws(() => validateHubConfig({ listen: 'nope' }), /HOST:PORT/);
  assert.throws(() => validateHubConfig({ heartbeatMs: 5 }), /heartbeatMs/);
  assert.deepEqual(parseHostPort('[::1]:22'), { host: '::1', port: 22 });
  assert.equal(parseHostPort('host:99999'), null);
});

test('registry: add, duplicate name, duplicate key, remove', () => {
  const k1 = key();
  let reg = addHost({ version: 1, hosts: {} }, { name: 'web1', keys: [k1], tags: ['web'] });
  assert.deepEqual(reg.hosts['web1']!.keys, [normaliseKey(k1)]);
  assert.throws(() => addHost(reg, { name: 'web1', keys: [key()], tags: [] }), /already registered/);
  assert.throws(() => addHost(reg, { name: 'web2', keys: [k1], tags: [] }), /already registered to "web1"/);
  assert.throws(() => addHost(reg, { name: 'web2', keys: ['ssh-ed25519 AAAAnotakey'], tags: [] }), /invalid public key/);
  assert.throws(() => addHost(reg, { name: 'web2', keys: [key()], tags: ['Bad Tag'] }), /tag/);
  reg = removeHost(reg, 'web1');
  assert.deepEqual(reg.hosts, {});
  assert.throws(() => removeHost(reg, 'web1'), /no host/);
});
