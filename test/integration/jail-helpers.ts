// Shared setup of the SFTP jail tests (jail-escape.test.ts split in two:
// jail-escape-clients.test.ts and jail-limits.test.ts). The hub runs for real
// (bento-hub serve); web1 and db1 are published; things an attacker would love
// to reach sit outside the fleet, with symlinks planted on the hub pointing at
// them. Plus small promise wrappers over ssh2's SFTP client.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { TestFleet } from '../helpers/fleet.js';

export const SECRET = 'DB1-SECRET-7f3a9c';
export const OUTSIDE_SECRET = 'OUTSIDE-SECRET-51be02';
export const QUOTA = 64 * 1024;

export interface JailFleet {
  fleet: TestFleet;
  /** A directory outside the fleet holding secret.txt. */
  outside: string;
  /** The hash web1's configuration was published under. */
  web1Hash: string;
}

/** A fleet with web1 and db1 published, the planted symlinks in place, and the hub started. */
export async function createJailFleet(): Promise<JailFleet> {
  const fleet = await TestFleet.create({ hubSettings: { publish: { buildCommand: ['true'], logQuotaBytes: QUOTA, logMaxFiles: 20 } } });
  try {
    await fleet.addHost('web1');
    await fleet.addHost('db1');
    const hosts = path.join(fleet.fleetDir, 'hosts');
    await mkdir(path.join(hosts, 'web1', 'sub'), { recursive: true });
    await writeFile(path.join(hosts, 'web1', 'configuration.nix'), '{ ... }: { networking.hostName = "web1"; }\n');
    await writeFile(path.join(hosts, 'web1', 'sub', 'module.nix'), '{ }\n');
    await mkdir(path.join(hosts, 'db1'), { recursive: true });
    await writeFile(path.join(hosts, 'db1', 'configuration.nix'), '{ ... }: { }\n');
    await writeFile(path.join(hosts, 'db1', 'db-secret.txt'), `${SECRET}\n`);
    const dep = await fleet.hubCli(['deploy', '--json']);
    assert.equal(dep.code, 0, dep.stderr);
    const web1Hash = (JSON.parse(dep.stdout) as { hosts: Array<{ host: string; hash: string }> }).hosts.find((h) => h.host === 'web1')!.hash;

    // Things an attacker would love to reach, and symlinks planted on the hub pointing at them.
    const outside = path.join(fleet.dir, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret.txt'), `${OUTSIDE_SECRET}\n`);
    const ver = path.join(fleet.fleetDir, 'jails', 'web1', 'versions', web1Hash);
    await chmod(ver, 0o755);
    await symlink(outside, path.join(ver, 'evil-dir'));
    await symlink(path.join(outside, 'secret.txt'), path.join(ver, 'evil-file'));
    await symlink('../../../db1/versions', path.join(ver, 'sub', 'evil-rel'));
    await symlink(path.join(outside, 'secret.txt'), path.join(fleet.fleetDir, 'jails', 'web1', 'logs', 'planted.log'));
    await fleet.startHub();
    return { fleet, outside, web1Hash };
  } catch (err) {
    await fleet.close();
    throw err;
  }
}

/** sha256 over every path, type, mode, link target and file content under the roots, except `skip`. */
export async function checksum(roots: string[], skip: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (p: string): Promise<void> => {
    if (p === skip || p.startsWith(`${skip}/`)) return;
    const st = await lstat(p);
    h.update(`${p}\0${st.mode}\0${st.size}\0`);
    if (st.isSymbolicLink()) h.update(await readlink(p));
    else if (st.isFile()) h.update(await readFile(p));
    else if (st.isDirectory()) for (const n of (await readdir(p)).sort()) await walk(path.join(p, n));
  };
  for (const r of roots) await walk(r);
  return h.digest('hex');
}

/** An SFTP session into `host`'s jail, with that host's own key. */
export function connectSftp(fleet: TestFleet, host: string): Promise<{ client: ssh2.Client; sftp: SFTPWrapper }> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on('error', reject);
    client.on('ready', () => client.sftp((err, sftp) => (err ? reject(err) : resolve({ client, sftp }))));
    readFile(fleet.keys.get(host)!.keyPath).then((privateKey) => client.connect({ host: '127.0.0.1', port: fleet.sshPort, username: host, privateKey }), reject);
  });
}

export type Outcome = { ok: true; value: unknown } | { ok: false; code: number | undefined; message: string };

/** One callback-style SFTP request as an Outcome; never rejects. */
export function call(fn: (cb: (err: Error | null | undefined, v?: unknown) => void) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    try {
      fn((err, v) => resolve(err ? { ok: false, code: (err as { code?: number }).code, message: err.message } : { ok: true, value: v }));
    } catch (err) {
      resolve({ ok: false, code: undefined, message: (err as Error).message });
    }
  });
}

/** Open, read (up to 64 KiB) and close `p`. */
export async function readAll(sftp: SFTPWrapper, p: string): Promise<Outcome> {
  const opened = await call((cb) => sftp.open(p, 'r', cb as never));
  if (!opened.ok) return opened;
  const buf = Buffer.alloc(64 * 1024);
  const r = await call((cb) => sftp.read(opened.value as Buffer, buf, 0, buf.length, 0, ((err: Error | undefined, n: number) => cb(err, n)) as never));
  await call((cb) => sftp.close(opened.value as Buffer, cb as never));
  return r.ok ? { ok: true, value: buf.subarray(0, r.value as number).toString('utf8') } : r;
}
