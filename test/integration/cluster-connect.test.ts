// Each way a hub authenticates to NATS, against a real nats-server (one
// JetStream node per test, configured for that way): token, user/password,
// nkey seed file, TLS with a private CA and client certificates. The right
// credentials open the backend and store a record; wrong or missing ones are
// CLUSTER_UNAVAILABLE, a missing file is CONFIG_INVALID, both named clearly.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { createUser } from '@nats-io/nkeys';
import { silentLogger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { tmpDir } from '../helpers/proc.js';

const run = promisify(execFile);
const isRec = (_k: string, v: unknown): v is { n: number } => typeof (v as { n?: unknown } | null)?.n === 'number';

async function withServer(extra: string, body: (c: NatsCluster) => Promise<void>): Promise<void> {
  const c = await startNatsCluster({ nodes: 1, extraConfig: () => extra });
  try { await body(c); } finally { await c.stop(); }
}

/** Opens a backend with these options (replicas 1: one node) and stores a record through it. */
async function works(c: NatsCluster, extra: Record<string, unknown>, servers = c.urls): Promise<void> {
  const b = await NatsStateBackend.open(parseClusterOptions({ servers, hubName: 'hub-a', replicas: 1, connectTimeoutMs: 3000, ...extra }), silentLogger());
  try {
    const s = await b.openKeyed('auth', { accept: isRec });
    assert.ok(await s.set('k', { n: 1 }) > 0);
  } finally {
    await b.close();
  }
}

async function refused(c: NatsCluster, extra: Record<string, unknown>, code: string, servers = c.urls): Promise<string> {
  let message = '';
  await assert.rejects(works(c, extra, servers), (e: unknown) => {
    message = e instanceof Error ? e.message : String(e);
    return e instanceof BentoError && e.code === code;
  });
  return message;
}

test('token', () => withServer('authorization { token: "s3cret-token" }', async (c) => {
  await works(c, { token: 's3cret-token' });
  assert.match(await refused(c, { token: 'wrong' }, 'CLUSTER_UNAVAILABLE'), /cannot connect to NATS.*[Aa]uthorization/);
  await refused(c, {}, 'CLUSTER_UNAVAILABLE');
}));

test('user and password', () => withServer('authorization { users: [ { user: "hub", password: "pw-1" } ] }', async (c) => {
  await works(c, { user: 'hub', password: 'pw-1' });
  await refused(c, { user: 'hub', password: 'pw-2' }, 'CLUSTER_UNAVAILABLE');
}));

test('nkey seed file', async () => {
  const { dir, cleanup } = await tmpDir('bento-nkey-');
  try {
    const kp = createUser();
    const seedFile = path.join(dir, 'hub.nk');
    await writeFile(seedFile, `${new TextDecoder().decode(kp.getSeed())}\n`, { mode: 0o600 });
    const other = path.join(dir, 'other.nk');
    await writeFile(other, new TextDecoder().decode(createUser().getSeed()), { mode: 0o600 });
    await withServer(`authorization { users: [ { nkey: ${kp.getPublicKey()} } ] }`, async (c) => {
      await works(c, { nkeySeedFile: seedFile });
      await refused(c, { nkeySeedFile: other }, 'CLUSTER_UNAVAILABLE');
      assert.match(await refused(c, { nkeySeedFile: path.join(dir, 'missing.nk') }, 'CONFIG_INVALID'), /nkeySeedFile.*missing\.nk/);
    });
  } finally {
    await cleanup();
  }
});

test('TLS with a private CA, the server verifying client certificates', async () => {
  const { dir, cleanup } = await tmpDir('bento-tls-');
  const f = (n: string): string => path.join(dir, n);
  const ossl = (args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir });
  try {
    await ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=bento test CA', '-keyout', 'ca.key', '-out', 'ca.pem']);
    for (const [name, ext] of [['server', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
      await writeFile(f(`${name}.ext`), `${ext}\n`);
      await ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
      await ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
    }
    const conf = `tls { cert_file: "${f('server.pem')}", key_file: "${f('server.key')}", ca_file: "${f('ca.pem')}", verify: true, timeout: 2 }`;
    await withServer(conf, async (c) => {
      // By name, as the certificate says (options.ts refuses IP addresses with TLS).
      const tlsUrls = c.nodes.map((n) => `tls://localhost:${n.clientPort}`);
      await works(c, { tls: { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') } }, tlsUrls);
      // No client certificate: the server refuses the handshake.
      await refused(c, { tls: { caFile: f('ca.pem') } }, 'CLUSTER_UNAVAILABLE', tlsUrls);
      // The server's certificate is not from a CA the hub trusts.
      await refused(c, { tls: { caFile: f('client.pem'), certFile: f('client.pem'), keyFile: f('client.key') } }, 'CLUSTER_UNAVAILABLE', tlsUrls);
    });
  } finally {
    await cleanup();
  }
});
