// The cluster connection options (hub/cluster/options.ts): the edge for
// hub.json's `cluster` section. Good input comes out complete; bad input is a
// CONFIG_INVALID error naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BentoError } from '../../common/protocol/errors.js';
import { CLUSTER_DEFAULTS, parseClusterOptions } from '../../hub/cluster/options.js';
import { connectionOptions } from '../../hub/cluster/connection.js';
import { validateHubConfig } from '../../hub/fleet/hub-config.js';

const base = { servers: ['nats://nats1.example:4222', 'tls://nats2.example:4222', 'nats3.example:4222'], hubName: 'hub-a' };
const plain = { servers: ['nats://10.0.0.1:4222', '10.0.0.3:4222'], hubName: 'hub-a' };

function refused(raw: unknown, field: string): void {
  assert.throws(() => parseClusterOptions(raw), (e: unknown) => e instanceof BentoError && e.code === 'CONFIG_INVALID' && e.message.includes(field),
    `expected CONFIG_INVALID about ${field} for ${JSON.stringify(raw)}`);
}

test('a minimal section gets the defaults', () => {
  assert.deepEqual(parseClusterOptions(base), { ...base, ...CLUSTER_DEFAULTS });
  assert.deepEqual(parseClusterOptions(plain), { ...plain, ...CLUSTER_DEFAULTS }, 'IP addresses are fine without TLS');
});

test('every option is kept', () => {
  const full = {
    ...base, user: 'hub', password: 'pw', prefix: 'fleet_2', replicas: 5, requestTimeoutMs: 500,
    writeTimeoutMs: 4000, connectTimeoutMs: 1000, outputMaxBytes: 1024 ** 3 * 10, livenessMs: 700, routeTimeoutMs: 3000, tls: { caFile: '/etc/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' },
  };
  assert.deepEqual(parseClusterOptions(full), full);
});

test('bad input names its field', () => {
  refused(null, 'cluster');
  refused({ ...base, servers: [] }, 'servers');
  refused({ ...base, servers: ['http://x:1'] }, 'servers[0]');
  refused({ ...base, servers: ['nats://u:p@x:1'] }, 'servers[0]');
  refused({ ...base, servers: ['nats://'] }, 'servers[0]');
  refused({ ...base, hubName: 'Hub A' }, 'hubName');
  refused({ servers: base.servers }, 'hubName');
  refused({ ...base, user: 'u' }, 'password');
  refused({ ...base, password: 'p' }, 'user');
  refused({ ...base, token: 't', nkeySeedFile: '/s' }, 'one of');
  refused({ ...base, token: '' }, 'token');
  refused({ ...base, prefix: 'a.b' }, 'prefix');
  refused({ ...base, replicas: 0 }, 'replicas');
  refused({ ...base, replicas: 2.5 }, 'replicas');
  refused({ ...base, requestTimeoutMs: 10 }, 'requestTimeoutMs');
  refused({ ...base, requestTimeoutMs: 5000, writeTimeoutMs: 1000 }, 'writeTimeoutMs');
  refused({ ...base, tls: { certFile: '/c.pem' } }, 'tls');
  refused({ ...base, tls: { caFile: 7 } }, 'tls.caFile');
  refused({ ...base, tls: { ca: '/x' } }, 'tls.ca');
  refused({ ...base, nats: true }, 'nats');
  refused({ ...base, servers: ['tls://10.0.0.1:4222'] }, 'DNS name');
  refused({ ...base, servers: ['nats1.example:4222', '[::1]:4222'], tls: { caFile: '/ca.pem' } }, 'servers[1]');
  refused({ ...base, livenessMs: 5 }, 'livenessMs');
  refused({ ...base, agentUrl: 'http://hub1:80' }, 'agentUrl');
  assert.equal(parseClusterOptions({ ...base, agentUrl: 'ssh://hub1.example.org:2222' }).agentUrl, 'ssh://hub1.example.org:2222');
  refused({ ...base, user: 'u', password: 'p', passwordFile: '/p' }, 'passwordFile');
  refused({ ...base, token: 't', tokenFile: '/t' }, 'tokenFile');
  refused({ ...base, tokenFile: '/t', credsFile: '/c' }, 'one of');
  assert.equal(parseClusterOptions({ ...base, user: 'u', passwordFile: '/run/secrets/nats' }).passwordFile, '/run/secrets/nats');
  refused({ ...base, routeTimeoutMs: 'x' }, 'routeTimeoutMs');
});

test('hub.json: without `cluster` the hub is a single hub; a `cluster` section is validated, its errors name hub.json and the field', () => {
  assert.equal(validateHubConfig({}).cluster, undefined);
  assert.deepEqual(validateHubConfig({ cluster: base }).cluster, { ...base, ...CLUSTER_DEFAULTS });
  assert.throws(() => validateHubConfig({ cluster: { ...base, servers: ['http://x:1'] } }, '/f/hub.json'),
    (e: unknown) => e instanceof BentoError && e.code === 'CONFIG_INVALID' && e.message.startsWith('/f/hub.json: cluster.servers[0]'));
  assert.throws(() => validateHubConfig({ cluster: { servers: base.servers } }), (e: unknown) => e instanceof BentoError && e.message.includes('cluster.hubName'));
});

test('connection options: the hub names its connection, reconnects forever, and files that cannot be read are CONFIG_INVALID', async () => {
  const o = await connectionOptions(parseClusterOptions({ ...base, token: 's3cret' }));
  assert.equal(o.name, 'bento-hub hub-a');
  assert.equal(o.maxReconnectAttempts, -1);
  assert.equal(o.noEcho, true);
  assert.ok(o.authenticator);
  assert.ok(o.tls, 'a tls:// server asks for TLS');
  for (const bad of [{ tokenFile: '/nonexistent/token' }, { user: 'hub', passwordFile: '/nonexistent/pw' }, { nkeySeedFile: '/nonexistent/seed' }, { credsFile: '/nonexistent/creds' }, { tls: { caFile: '/nonexistent/ca.pem' } }]) {
    await assert.rejects(connectionOptions(parseClusterOptions({ ...base, ...bad })), (e: unknown) => e instanceof BentoError && e.code === 'CONFIG_INVALID' && e.message.includes('/nonexistent/'));
  }
});
