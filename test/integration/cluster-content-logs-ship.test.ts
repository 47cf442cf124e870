// Uploaded logs in a cluster, on a real 3-node NATS cluster (found by review):
//   - a log the archive refuses for good (here a real one: its host's
//     manifest would pass NATS' max_payload) no longer holds up every other
//     host's logs at that hub; the others move, streamed in chunks;
//   - the dashboard lists and shows a host's logs at every hub, as
//     `bento-hub logs` does, also once they left the jail for the archive.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { silentLogger } from '../../common/platform/log.js';
import { DirectKv } from '../../hub/cluster/kv-direct.js';
import { isLogManifest, KvLogArchive, LOGS_STORE, type LogManifest } from '../../hub/cluster/logs-kv.js';
import type { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { DEFAULT_PUBLISH_SETTINGS } from '../../hub/publish/settings.js';
import { LogQuotas, LogUsage } from '../../hub/sftp/log-quota.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import type { TestFleet } from '../helpers/fleet.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { call } from './jail-helpers.js';
import { request } from './web-helpers.js';
import { clusterFleet, dropPrefix, freshPrefix, openBackend } from './cluster-content-helpers.js';

let nats: NatsCluster;
const prefixes: string[] = [];

before(async () => { nats = await startNatsCluster(); });
after(async () => {
  for (const p of prefixes) await dropPrefix(nats, p).catch(() => undefined);
  await nats?.stop();
});

const longName = (i: number): string => `20250101-000000_${String(i).padStart(6, '0')}_${'s'.repeat(170)}_success.log.gz`;

test('a host whose manifest NATS refuses does not hold up the other hosts\' logs; a log is streamed into the store', async () => {
  const prefix = freshPrefix('ship');
  prefixes.push(prefix);
  const backend: NatsStateBackend = await openBackend(nats, prefix, 'hubx');
  const fleetDir = await mkdtemp(path.join(os.tmpdir(), 'ship-real-'));
  let q: LogQuotas | null = null;
  try {
    const archive = await KvLogArchive.open(backend, { log: silentLogger() });
    // evil's manifest just under what NATS accepts (as a logMaxFiles past the cluster's bound allowed):
    // one more entry and the record is too large to write.
    const max = backend.nc.info?.max_payload ?? 1024 * 1024;
    const logs: LogManifest['logs'] = {};
    for (let i = 0; JSON.stringify({ logs }).length < max - 1024 - 300; i++) logs[longName(i)] = { size: 0, at: new Date().toISOString(), hub: 'hubx' };
    await new DirectKv((await backend.openBucket(LOGS_STORE)), isLogManifest).update('evil', () => ({ logs }));
    const evilName = longName(999_999);
    const webName = '20250101-000001_sys_g1_success.log.gz';
    const webData = randomBytes(300 * 1024); // several 128 KiB chunks
    for (const [host, name, data] of [['evil', evilName, Buffer.from('x')], ['web1', webName, webData]] as const) {
      await mkdir(path.join(fleetDir, 'jails', host, 'logs'), { recursive: true });
      await writeFile(path.join(fleetDir, 'jails', host, 'logs', name), data);
    }
    const settings = { ...DEFAULT_PUBLISH_SETTINGS, logMaxFiles: 100_000, logQuotaBytes: 2 ** 40 };
    q = new LogQuotas({ archive, settings, log: silentLogger(), retryMs: 200 });
    // evil's log first in the queue: the review's case.
    for (const [host, name] of [['evil', evilName], ['web1', webName]] as const) q.finished(host, new LogUsage(path.join(fleetDir, 'jails', host, 'logs')), name);
    await waitFor('web1\'s log moved into the archive', async () => (await archive.list('web1')).has(webName), 20_000, 200);
    assert.deepEqual(await archive.read('web1', webName), webData, 'stored whole, streamed in chunks');
    assert.equal((await archive.list('web1')).get(webName), webData.length);
    await waitFor('web1\'s jail emptied', async () => (await readdir(path.join(fleetDir, 'jails', 'web1', 'logs'))).length === 0, 5000);
    assert.deepEqual(await readdir(path.join(fleetDir, 'jails', 'evil', 'logs')), [evilName], 'the refused log stays in the jail');
    assert.equal((await archive.list('evil')).has(evilName), false);
  } finally {
    await q?.close();
    await backend.close();
    await rm(fleetDir, { recursive: true, force: true });
  }
});

/** Upload DATA as HOST's log NAME at FLEET's hub over SFTP (the host's own key, from KEYS' fleet). */
async function upload(fleet: TestFleet, keys: TestFleet, host: string, name: string, data: Buffer): Promise<void> {
  const privateKey = await readFile(keys.keys.get(host)!.keyPath);
  const s = await new Promise<{ sftp: SFTPWrapper; end(): void }>((resolve, reject) => {
    const client = new ssh2.Client();
    client.on('error', reject);
    client.on('ready', () => client.sftp((err, sftp) => (err ? reject(err) : resolve({ sftp, end: () => client.end() }))));
    client.connect({ host: '127.0.0.1', port: fleet.sshPort, username: host, privateKey });
  });
  try {
    const opened = await call((cb) => s.sftp.open(`logs/${name}`, 'wx', cb as never));
    assert.ok(opened.ok, opened.ok ? '' : opened.message);
    const w = await call((cb) => s.sftp.write(opened.value as Buffer, data, 0, data.length, 0, cb as never));
    assert.ok(w.ok, w.ok ? '' : w.message);
    await call((cb) => s.sftp.close(opened.value as Buffer, cb as never));
  } finally {
    s.end();
  }
}

test('the dashboard at every hub lists and shows a log uploaded at A, once it moved into the archive', async () => {
  const prefix = freshPrefix('dash');
  prefixes.push(prefix);
  const fleets: TestFleet[] = [];
  try {
    const dash: string[] = [];
    for (const hub of ['huba', 'hubb']) {
      const port = await freePort();
      dash.push(`http://127.0.0.1:${port}`);
      fleets.push(await clusterFleet(nats, prefix, hub, { hubSettings: { publish: { buildCommand: ['true'] }, dashboard: { listen: `127.0.0.1:${port}`, tokenFile: null } } }));
    }
    const [a, b] = fleets as [TestFleet, TestFleet];
    for (const f of ['hub_ed25519_key', 'hub_ed25519_key.pub']) await copyFile(path.join(a.fleetDir, f), path.join(b.fleetDir, f));
    await a.startHub();
    await b.startHub();
    await a.addHost('web1');
    const name = '20250101-000002_sys_g3_success.log';
    await upload(a, a, 'web1', name, Buffer.from('built web1\nall good\n'));
    // Shipped: gone from A's jail, in the archive.
    await waitFor('the log left A\'s jail', async () => (await readdir(path.join(a.fleetDir, 'jails', 'web1', 'logs')).catch(() => [name])).length === 0, 20_000, 200);
    for (const url of dash) {
      const page = await request(`${url}/hosts/web1`);
      assert.equal(page.status, 200, url);
      assert.ok(page.body.includes(`/hosts/web1/logs/${name}`), `${url} lists the log`);
      const log = await request(`${url}/hosts/web1/logs/${name}`);
      assert.equal(log.status, 200, `${url}: ${log.body.slice(0, 200)}`);
      assert.match(log.body, /built web1/);
      assert.equal((await request(`${url}/hosts/web1/logs/20250101-000009_sys_g3_success.log`)).status, 404, 'an unknown log is still 404');
    }
  } finally {
    for (const f of fleets) await f.close();
  }
});
