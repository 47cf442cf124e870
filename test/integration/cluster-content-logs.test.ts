// A host's log quota across two real hubs (one NATS cluster of 3): the host
// uploads over SFTP (ssh2's client, the host's own key) into whichever hub's
// jail it reaches; every hub counts the logs of all hubs, prunes the oldest
// of them when a new log needs room, refuses a write that would pass the
// quota, keeps names unique, and at rest the host never holds more than its
// quota or its file limit, also after uploads at both hubs at once.
import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import type { TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';
import { call } from './jail-helpers.js';
import { clusterFleet, dropPrefix, freshPrefix } from './cluster-content-helpers.js';

const QUOTA = 64 * 1024;
const MAX_FILES = 5;
let nats: NatsCluster;
let prefix: string;
let a: TestFleet;
let b: TestFleet;

before(async () => {
  nats = await startNatsCluster();
  prefix = freshPrefix('logs');
  const hubSettings = { publish: { buildCommand: ['true'], logQuotaBytes: QUOTA, logMaxFiles: MAX_FILES } };
  a = await clusterFleet(nats, prefix, 'huba', { hubSettings });
  b = await clusterFleet(nats, prefix, 'hubb', { hubSettings });
  for (const f of ['hub_ed25519_key', 'hub_ed25519_key.pub']) await copyFile(path.join(a.fleetDir, f), path.join(b.fleetDir, f));
  await a.startHub();
  await b.startHub();
  await a.addHost('web1');
  await a.addHost('db1');
});

after(async () => {
  await a?.close();
  await b?.close();
  if (nats) await dropPrefix(nats, prefix).catch(() => undefined);
  await nats?.stop();
});

/** An SFTP session of HOST into FLEET's hub's jail. */
async function sftpAt(fleet: TestFleet, host: string): Promise<{ sftp: SFTPWrapper; end(): void }> {
  const privateKey = await readFile(a.keys.get(host)!.keyPath);
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on('error', reject);
    client.on('ready', () => client.sftp((err, sftp) => (err ? reject(err) : resolve({ sftp, end: () => client.end() }))));
    client.connect({ host: '127.0.0.1', port: fleet.sshPort, username: host, privateKey });
  });
}

const PIECE = 16 * 1024;

/** Upload NAME of SIZE bytes in 16 KiB writes; returns what went wrong, if anything (the open, or the first write refused). */
async function upload(fleet: TestFleet, host: string, name: string, size: number): Promise<string | null> {
  const s = await sftpAt(fleet, host);
  try {
    const opened = await call((cb) => s.sftp.open(`logs/${name}`, 'wx', cb as never));
    if (!opened.ok) return opened.message;
    let failed: string | null = null;
    for (let off = 0; off < size && !failed; off += PIECE) {
      const len = Math.min(PIECE, size - off);
      const w = await call((cb) => s.sftp.write(opened.value as Buffer, Buffer.alloc(len, 0x41), 0, len, off, cb as never));
      if (!w.ok) failed = w.message;
    }
    await call((cb) => s.sftp.close(opened.value as Buffer, cb as never));
    return failed;
  } finally {
    s.end();
  }
}

async function listed(fleet: TestFleet, host: string): Promise<Array<{ name: string; size: number }>> {
  const r = await fleet.hubCli(['logs', host, '--list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { logs: Array<{ name: string; size: number }> }).logs;
}

/** Wait until FLEET's `logs` lists exactly NAMES (every upload moved, every prune done). */
async function settle(fleet: TestFleet, host: string, names: string[]): Promise<Array<{ name: string; size: number }>> {
  let last: Array<{ name: string; size: number }> = [];
  try {
    return await waitFor(`${host}'s logs are ${names.join(', ')}`, async () => {
      last = await listed(fleet, host);
      return JSON.stringify(last.map((l) => l.name).sort()) === JSON.stringify([...names].sort()) ? last : null;
    }, 20_000, 200);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${last.map((l) => l.name).join(', ')}`);
  }
}

const n = (i: number): string => `20250101-0000${String(i).padStart(2, '0')}_sys_g1_success.log.gz`;

test('logs uploaded at A count at B: the oldest are pruned to make room, a write past the quota is refused, a name is taken everywhere', async () => {
  assert.equal(await upload(a, 'web1', n(1), 20 * 1024), null);
  assert.equal(await upload(a, 'web1', n(2), 20 * 1024), null);
  await settle(b, 'web1', [n(1), n(2)]);
  // The same name at the other hub: create-only holds across hubs.
  assert.match(String(await upload(b, 'web1', n(2), 10)), /exists; logs are create-only/);
  // At B: A's 40 KiB are more than half the quota, so the oldest (n1) goes; then n3's third
  // 16 KiB write would bring the host's 20 KiB + 48 KiB past 64 KiB: refused, 32 KiB of n3 stay.
  assert.match(String(await upload(b, 'web1', n(3), 48 * 1024)), /log quota exceeded: 65536 bytes per host/);
  assert.deepEqual((await settle(a, 'web1', [n(2), n(3)])).map((l) => l.size), [20 * 1024, 32 * 1024]);
  // Next log at B: 52 KiB held, n2 goes (32 KiB left); 30 KiB more fit.
  assert.equal(await upload(b, 'web1', n(4), 30 * 1024), null);
  const now = await settle(a, 'web1', [n(3), n(4)]);
  assert.ok(now.reduce((t, l) => t + l.size, 0) <= QUOTA);
  // Shown at either hub, whichever hub took it.
  const shown = await a.hubCli(['logs', 'web1', n(4)]);
  assert.equal(shown.stdout.length, 30 * 1024 + 1);
});

test('uploads at both hubs at once, and the file limit: at rest the host holds at most its quota and its files', async () => {
  // Both logs are created (each hub counts what the archive holds: nothing) before either is written,
  // so each hub lets its own 40 KiB through...
  const [sa, sb] = [await sftpAt(a, 'db1'), await sftpAt(b, 'db1')];
  try {
    const ha = await call((cb) => sa.sftp.open(`logs/${n(20)}`, 'wx', cb as never));
    const hb = await call((cb) => sb.sftp.open(`logs/${n(21)}`, 'wx', cb as never));
    assert.ok(ha.ok && hb.ok);
    for (const [s, h] of [[sa, ha], [sb, hb]] as const) {
      for (let off = 0; off < 40 * 1024; off += PIECE) {
        const w = await call((cb) => s.sftp.write(h.value as Buffer, Buffer.alloc(PIECE, 0x42), 0, PIECE, off, cb as never));
        assert.ok(w.ok, w.ok ? '' : w.message);
      }
    }
    await Promise.all([[sa, ha], [sb, hb]].map(([s, h]) => call((cb) => (s as typeof sa).sftp.close((h as { value: Buffer }).value, cb as never))));
  } finally {
    sa.end();
    sb.end();
  }
  // ...and the archive, taking both, drops the oldest (by name) to stay within the quota.
  const after1 = await settle(a, 'db1', [n(21)]);
  assert.ok(after1.reduce((t, l) => t + l.size, 0) <= QUOTA);
  // The file limit: 5 logs across both hubs, never more.
  for (let i = 0; i < 8; i++) assert.equal(await upload(i % 2 ? a : b, 'db1', n(30 + i), 100), null, `upload ${i}`);
  const held = await settle(b, 'db1', [n(33), n(34), n(35), n(36), n(37)]);
  assert.equal(held.length, MAX_FILES);
});
