// The pull's own connection (no tunnel, client/pull/connect.ts) over several
// hub endpoints, against real ssh2 servers on loopback that serve an empty
// SFTP tree (nothing published): it tries the endpoints the agent's main loop
// would (endpointsToTry: "spread" order), and a hub whose key is not pinned
// (revoked: removed from hubFingerprints, but still listed) is one failed
// endpoint, not the end of the pull. Found by review.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { silentLogger } from '../../common/platform/log.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import { validateClientConfig } from '../../client/config.js';
import { endpointsToTry } from '../../client/net/endpoint-order.js';
import { parseEndpoint } from '../../client/net/endpoint.js';
import { sftpOverFreshConnection } from '../../client/pull/connect.js';
import { ConfigPuller, type CheckResult } from '../../client/pull/puller.js';

const NO_SUCH_FILE = ssh2.utils.sftp.STATUS_CODE.NO_SUCH_FILE;

interface Hub { url: string; fingerprint: string; logins: () => number; close: () => void }

/** An ssh2 server whose SFTP tree is empty: every lookup answers "no such file". */
function hub(): Promise<Hub> {
  const key = generateEd25519('hub');
  let logins = 0; // sessions that got past authentication
  const server = new ssh2.Server({ hostKeys: [key.private] }, (client) => {
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      ctx.accept();
    });
    client.on('ready', () => { logins++; });
    client.on('session', (accept) => accept().on('sftp', (acc) => {
      const sftp = acc();
      for (const ev of ['OPEN', 'STAT', 'LSTAT', 'OPENDIR', 'REALPATH'] as const) {
        sftp.on(ev, (reqid: number) => sftp.status(reqid, NO_SUCH_FILE));
      }
    }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `ssh://127.0.0.1:${(server.address() as AddressInfo).port}`,
    fingerprint: fingerprintOfKeyLine(key.public),
    logins: () => logins,
    close: () => server.close(),
  })));
}

/** A ConfigPuller without a tunnel (so every check opens its own connection). */
async function pullOnce(o: { name: string; urls: string[]; pinned: string[]; endpointOrder?: 'listed' | 'spread' }): Promise<CheckResult | string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'bento-pull-endpoints-'));
  try {
    const config = validateClientConfig({
      name: o.name, endpoints: o.urls.map((url) => ({ url })), endpointOrder: o.endpointOrder ?? 'listed',
      hubFingerprints: o.pinned, identityFile: path.join(root, 'key'), stateDir: path.join(root, 'state'),
      localPage: null, connectTimeoutMs: 5000,
    });
    const p = new ConfigPuller({ config, log: silentLogger(), privateKey: Buffer.from(generateEd25519(o.name).private) });
    await p.init();
    return await p.check({ reason: 'test', apply: false }).catch((err: Error & { code?: string }) => `${err.code}: ${err.message}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('a hub whose key is no longer pinned is skipped: the pull goes on to the pinned hub behind it', async () => {
  const revoked = await hub();
  const good = await hub();
  try {
    const got = await pullOnce({ name: 'web1', urls: [revoked.url, good.url], pinned: [good.fingerprint] });
    assert.equal(typeof got, 'object', `the pull failed: ${String(got)}`);
    assert.equal((got as CheckResult).status, 'not-published');
    assert.equal((got as CheckResult).via, good.url, 'the pinned hub served the pull');
    assert.equal(revoked.logins(), 0, 'nothing was sent to the unpinned hub past the key exchange');
  } finally {
    revoked.close();
    good.close();
  }
});

test('when every endpoint fails the error names each; all refused keys stay HOST_KEY_MISMATCH', async () => {
  const a = await hub();
  const b = await hub();
  const closed = await hub();
  closed.close(); // nothing listens on its port any more
  const opts = { user: 'web1', privateKey: Buffer.from(generateEd25519('web1').private), fingerprint: [`SHA256:${'A'.repeat(43)}`], timeoutMs: 5000, log: silentLogger() };
  try {
    const fail = (urls: string[]): Promise<Error & { code?: string }> => sftpOverFreshConnection({ ...opts, endpoints: urls.map((url) => parseEndpoint({ url })) })
      .then((s) => { s.close(); throw new Error('connected although no key is pinned'); }, (err: Error & { code?: string }) => err);
    const both = await fail([a.url, b.url]);
    assert.equal(both.code, 'HOST_KEY_MISMATCH', both.message);
    assert.ok(both.message.includes(a.url) && both.message.includes(b.url), both.message);
    const mixed = await fail([a.url, closed.url]);
    assert.equal(mixed.code, 'CONNECT_FAILED', mixed.message);
    assert.match(mixed.message, /\[HOST_KEY_MISMATCH\].*\[CONNECT_FAILED\]/);
    assert.ok(mixed.message.includes(closed.url), mixed.message);
    assert.equal(a.logins() + b.logins(), 0);
  } finally {
    a.close();
    b.close();
  }
});

test('"spread": the pull goes to the host\'s own first hub, as the agent\'s main loop does', async () => {
  const h1 = await hub();
  const h2 = await hub();
  try {
    const urls = [h1.url, h2.url];
    const eps = urls.map((url) => parseEndpoint({ url }));
    // A host whose spread order starts at the second listed hub (about half do).
    let name = '';
    for (let i = 0; !name; i++) if ((await endpointsToTry(`web${i}`, eps, 'spread'))[0]!.url === h2.url) name = `web${i}`;
    const got = await pullOnce({ name, urls, pinned: [h1.fingerprint, h2.fingerprint], endpointOrder: 'spread' });
    assert.equal(typeof got, 'object', `the pull failed: ${String(got)}`);
    assert.equal((got as CheckResult).via, h2.url);
    assert.deepEqual([h1.logins(), h2.logins()], [0, 1]);
  } finally {
    h1.close();
    h2.close();
  }
});
