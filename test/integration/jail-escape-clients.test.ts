// Issue 4: each host reaches only its own files through the hub's SFTP jail.
// The hub runs for real (bento-hub serve); web1 and db1 are published; then
// web1 attacks the jail with ssh2's SFTP client and with OpenSSH's `sftp -b`:
// other hosts' files via "..", absolute paths and odd encodings, symlinks
// planted on the hub pointing outside, every mutating request, handle tricks,
// and a write beyond the log quota. Every attempt is refused, nothing secret
// comes back, and a checksum of everything outside web1's jail is unchanged.
// The open-handle limit is in jail-limits.test.ts; the setup in jail-helpers.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import type { TestFleet } from '../helpers/fleet.js';
import { call, checksum, connectSftp, createJailFleet, OUTSIDE_SECRET, QUOTA, readAll, SECRET, type Outcome } from './jail-helpers.js';

const execFileP = promisify(execFile);
const { STATUS_CODE } = ssh2.utils.sftp;

let fleet: TestFleet;
let outside: string;
let web1Hash: string;

before(async () => {
  ({ fleet, outside, web1Hash } = await createJailFleet());
});

after(async () => { await fleet?.close(); });

const connect = (host: string): ReturnType<typeof connectSftp> => connectSftp(fleet, host);

test('ssh2 SFTP client: reads, listings, realpath and mutations outside the jail are all refused', async () => {
  const before = await checksum([fleet.fleetDir, outside], path.join(fleet.fleetDir, 'jails', 'web1', 'logs'));
  const { client, sftp } = await connect('web1');
  try {
    // Positive control: its own configuration is readable, and the root lists the jail only.
    const own = await readAll(sftp, '/config/configuration.nix');
    assert.ok(own.ok && String(own.value).includes('web1'), JSON.stringify(own));
    const root = await call((cb) => sftp.readdir('/', cb as never));
    assert.ok(root.ok);
    assert.deepEqual((root.value as Array<{ filename: string }>).map((e) => e.filename).sort(), ['config', 'last_change_date', 'logs', 'version.json']);
    const version = await readAll(sftp, 'version.json');
    assert.ok(version.ok && String(version.value).includes(web1Hash));

    const stolen: string[] = [];
    const escapes = [
      '../db1/version.json', '../db1/config/db-secret.txt', '/../db1/config/db-secret.txt', '/config/../../db1/config/db-secret.txt',
      'config/../../db1/version.json', '../../../../../../etc/passwd', '/etc/passwd', '//etc/passwd', '/jails/db1/version.json',
      `/${fleet.fleetDir}/jails/db1/config/db-secret.txt`, `${fleet.fleetDir}/jails/db1/config/db-secret.txt`,
      '..%2fdb1%2fversion.json', '%2e%2e/db1/version.json', '..\\db1\\version.json', 'config\\..\\..\\db1\\version.json',
      '\u2024\u2024/db1/version.json', '\uff0e\uff0e/db1/version.json', '.\u002e/db1/version.json', 'config/\u0000/../../db1',
      'config/evil-dir/secret.txt', 'config/evil-file', 'config/sub/evil-rel', 'config/sub/evil-rel/x', 'logs/planted.log',
      `versions/${web1Hash}/configuration.nix`, 'config/sub/../../../db1/version.json', 'config/./../../db1/version.json',
      '/proc/self/root/etc/passwd', `/proc/${process.pid}/cwd`, 'x'.repeat(5000),
    ];
    for (const p of escapes) {
      for (const [what, r] of [
        ['open', await readAll(sftp, p)],
        ['stat', await call((cb) => sftp.stat(p, cb as never))],
        ['lstat', await call((cb) => sftp.lstat(p, cb as never))],
        ['readdir', await call((cb) => sftp.readdir(p, cb as never))],
      ] as const) {
        if (r.ok) stolen.push(`${what} ${JSON.stringify(p)} -> ${JSON.stringify(r.value).slice(0, 200)}`);
      }
    }
    assert.deepEqual(stolen, [], 'nothing outside the jail is readable, listable or even stat-able');

    // REALPATH normalizes inside the virtual root only: it names no real path.
    const rp = await call((cb) => sftp.realpath('../../..', cb as never));
    assert.ok(rp.ok);
    assert.equal(rp.value, '/');
    const rp2 = await call((cb) => sftp.realpath('config/../../db1', cb as never));
    assert.equal(rp2.ok && rp2.value, '/db1');
    const db1 = await call((cb) => sftp.stat(String(rp2.ok ? rp2.value : ''), cb as never));
    assert.equal(db1.ok, false, 'the normalized path does not exist in the jail');

    // Every mutating request is PERMISSION_DENIED, wherever it points. The jail
    // advertises no SFTP extensions; make ssh2 send them anyway, as an attacker would.
    const exts = (sftp as unknown as { _extensions: Record<string, string> })._extensions;
    Object.assign(exts, { 'posix-rename@openssh.com': '1', 'hardlink@openssh.com': '1', 'statvfs@openssh.com': '2' });
    const denied: Array<[string, Outcome]> = [
      ['mkdir /x', await call((cb) => sftp.mkdir('/x', cb as never))],
      ['mkdir logs/d', await call((cb) => sftp.mkdir('logs/d', cb as never))],
      ['mkdir ../db1/x', await call((cb) => sftp.mkdir('../db1/x', cb as never))],
      ['rmdir config', await call((cb) => sftp.rmdir('config', cb as never))],
      ['remove config file', await call((cb) => sftp.unlink('config/configuration.nix', cb as never))],
      ['remove version.json', await call((cb) => sftp.unlink('version.json', cb as never))],
      ['remove planted log', await call((cb) => sftp.unlink('logs/planted.log', cb as never))],
      ['rename config file', await call((cb) => sftp.rename('config/configuration.nix', 'logs/moved.log', cb as never))],
      ['rename to other host', await call((cb) => sftp.rename('logs/planted.log', '../db1/config/x', cb as never))],
      ['posix-rename', await call((cb) => sftp.ext_openssh_rename('config/configuration.nix', 'logs/y.log', cb as never))],
      ['hardlink', await call((cb) => sftp.ext_openssh_hardlink('config/configuration.nix', 'logs/z.log', cb as never))],
      ['setstat', await call((cb) => sftp.setstat('config/configuration.nix', { mode: 0o777 }, cb as never))],
      ['chmod version.json', await call((cb) => sftp.chmod('version.json', 0o666, cb as never))],
      ['utimes', await call((cb) => sftp.utimes('config', 1, 1, cb as never))],
      ['symlink into logs', await call((cb) => sftp.symlink('/etc/passwd', 'logs/link.log', cb as never))],
      ['symlink over config', await call((cb) => sftp.symlink('../db1', 'config', cb as never))],
      ['readlink config', await call((cb) => sftp.readlink('config', cb as never))],
      ['readlink planted', await call((cb) => sftp.readlink('config/evil-file', cb as never))],
      ['statvfs', await call((cb) => sftp.ext_openssh_statvfs('/', cb as never))],
      ['open config for write', await call((cb) => sftp.open('config/configuration.nix', 'r+', cb as never))],
      ['open version.json for write', await call((cb) => sftp.open('version.json', 'w', cb as never))],
      ['create in config', await call((cb) => sftp.open('config/new.nix', 'w', cb as never))],
      ['create at root', await call((cb) => sftp.open('/new.nix', 'w', cb as never))],
      ['read a log', await call((cb) => sftp.open('logs/planted.log', 'r', cb as never))],
      ['list logs', await call((cb) => sftp.readdir('logs', cb as never))],
      ['append a log', await call((cb) => sftp.open('logs/new.log', 'a', cb as never))],
      ['create over planted symlink', await call((cb) => sftp.open('logs/planted.log', 'w', cb as never))],
      ['hidden log name', await call((cb) => sftp.open('logs/.bashrc', 'w', cb as never))],
      ['log name with ..', await call((cb) => sftp.open('logs/../version.json', 'w', cb as never))],
      ['nested log dir', await call((cb) => sftp.open('logs/a/b.log', 'w', cb as never))],
    ];
    const allowed = denied.filter(([, r]) => r.ok).map(([w]) => w);
    assert.deepEqual(allowed, [], 'no mutation outside logs/ new files is allowed');
    const notPermission = denied.filter(([w, r]) => !r.ok && r.code !== STATUS_CODE.PERMISSION_DENIED && !['create over planted symlink', 'nested log dir', 'symlink over config'].includes(w));
    assert.deepEqual(notPermission.map(([w, r]) => `${w}: ${!r.ok ? r.code : ''}`), [], 'refusals are PERMISSION_DENIED');

    // Handles: a forged, a foreign or a closed handle does nothing.
    const h = await call((cb) => sftp.open('config/configuration.nix', 'r', cb as never));
    assert.ok(h.ok);
    const other = await connect('web1');
    try {
      const buf = Buffer.alloc(100);
      const foreign = await call((cb) => other.sftp.read(h.value as Buffer, buf, 0, 100, 0, cb as never));
      assert.equal(foreign.ok, false, 'a handle from another session is unknown there');
    } finally {
      other.client.end();
    }
    const fw = await call((cb) => sftp.write(h.value as Buffer, Buffer.from('x'), 0, 1, 0, cb as never));
    assert.equal(fw.ok, false, 'a read handle cannot write');
    assert.equal((await call((cb) => sftp.fsetstat(h.value as Buffer, { mode: 0o777 }, cb as never))).ok, false);
    await call((cb) => sftp.close(h.value as Buffer, cb as never));
    const closed = await call((cb) => sftp.read(h.value as Buffer, Buffer.alloc(10), 0, 10, 0, cb as never));
    assert.equal(closed.ok, false, 'a closed handle is gone');
    for (const forged of [Buffer.from([0, 0, 0, 0]), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from('../db1'), Buffer.alloc(200, 1)]) {
      assert.equal((await call((cb) => sftp.read(forged, Buffer.alloc(10), 0, 10, 0, cb as never))).ok, false);
    }

    // logs/: a new file can be written once; the quota stops a big one.
    const lh = await call((cb) => sftp.open('logs/20240101-000000_test_success.log.gz', 'w', cb as never));
    assert.ok(lh.ok, JSON.stringify(lh));
    assert.ok((await call((cb) => sftp.write(lh.value as Buffer, Buffer.from('hello'), 0, 5, 0, cb as never))).ok);
    assert.equal((await call((cb) => sftp.read(lh.value as Buffer, Buffer.alloc(5), 0, 5, 0, cb as never))).ok, false, 'a log handle cannot read');
    await call((cb) => sftp.close(lh.value as Buffer, cb as never));
    const again = await call((cb) => sftp.open('logs/20240101-000000_test_success.log.gz', 'w', cb as never));
    assert.equal(again.ok, false, 'logs are create-only: no overwrite');
    const big = await call((cb) => sftp.open('logs/big.log', 'w', cb as never));
    assert.ok(big.ok);
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let written = 0;
    let refused: Outcome | null = null;
    for (let off = 0; off < 2 * QUOTA; off += chunk.length) {
      const r = await call((cb) => sftp.write(big.value as Buffer, chunk, 0, chunk.length, off, cb as never));
      if (!r.ok) { refused = r; break; }
      written += chunk.length;
    }
    assert.ok(refused && !refused.ok && /quota/.test(refused.message), `a write beyond the quota is refused: ${JSON.stringify(refused)}`);
    assert.ok(written <= QUOTA, `wrote ${written} bytes with a ${QUOTA}-byte quota`);
    const sparse = await call((cb) => sftp.write(big.value as Buffer, Buffer.from('x'), 0, 1, 10 * 1024 ** 3, cb as never));
    assert.equal(sparse.ok, false, 'a write far past the end (sparse file) counts against the quota');
    await call((cb) => sftp.close(big.value as Buffer, cb as never));
  } finally {
    client.end();
  }

  // db1's key sees db1's jail only.
  const d = await connect('db1');
  try {
    const own = await readAll(d.sftp, 'config/db-secret.txt');
    assert.ok(own.ok && String(own.value).includes(SECRET));
    assert.equal((await readAll(d.sftp, `../web1/config/configuration.nix`)).ok, false);
  } finally {
    d.client.end();
  }

  // Nothing outside web1's jail changed; the planted symlink target is intact.
  assert.equal(await checksum([fleet.fleetDir, outside], path.join(fleet.fleetDir, 'jails', 'web1', 'logs')), before);
  assert.equal(await readFile(path.join(outside, 'secret.txt'), 'utf8'), `${OUTSIDE_SECRET}\n`);
  const logs = (await readdir(path.join(fleet.fleetDir, 'jails', 'web1', 'logs'))).sort();
  assert.deepEqual(logs, ['20240101-000000_test_success.log.gz', 'big.log', 'planted.log']);
  assert.ok((await lstat(path.join(fleet.fleetDir, 'jails', 'web1', 'logs', 'planted.log'))).isSymbolicLink(), 'the planted link was not written through');
});

test('OpenSSH sftp -b through the hub: the same escapes are refused', async () => {
  const before = await checksum([fleet.fleetDir, outside], path.join(fleet.fleetDir, 'jails', 'web1', 'logs'));
  const work = path.join(fleet.dir, 'openssh');
  const got = path.join(work, 'got');
  await mkdir(got, { recursive: true });
  const kh = path.join(work, 'known_hosts');
  const hubKey = (await readFile(path.join(fleet.fleetDir, 'hub_ed25519_key.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  await writeFile(kh, `[127.0.0.1]:${fleet.sshPort} ${hubKey}\n`);
  const small = path.join(work, 'small.log');
  await writeFile(small, 'a small log\n');
  const bigFile = path.join(work, 'big.bin');
  await writeFile(bigFile, Buffer.alloc(QUOTA * 2, 0x62));
  const batch = [
    `-get /config/../../db1/config/db-secret.txt ${got}/a`,
    `-get ../db1/config/db-secret.txt ${got}/b`,
    `-get /etc/passwd ${got}/c`,
    `-get config/evil-dir/secret.txt ${got}/d`,
    `-get config/evil-file ${got}/e`,
    `-get ${fleet.fleetDir}/jails/db1/config/db-secret.txt ${got}/f`,
    `-get -r config/sub ${got}/sub`,
    '-cd ..', '-cd ../db1', '-ls -la', '-ls -l config', '-ls logs',
    '-mkdir newdir', '-rename config/configuration.nix logs/moved.log', '-rm config/configuration.nix', '-rm version.json',
    '-chmod 777 config/configuration.nix', '-chown 0 config/configuration.nix', '-ln -s /etc/passwd logs/l1.log',
    '-symlink /etc/passwd logs/l2.log', '-ln config/configuration.nix logs/hard.log', '-rmdir config', '-df',
    `-put ${small} config/configuration.nix`, `-put ${small} version.json`, `-put ${small} /x.log`,
    `-put ${small} logs/20240102-000000_openssh_success.log`, `-put ${small} logs/20240102-000000_openssh_success.log`,
    `-get logs/20240102-000000_openssh_success.log ${got}/g`, `-put ${bigFile} logs/openssh-big.log`,
    `get config/configuration.nix ${got}/good`,
  ];
  const batchFile = path.join(work, 'batch');
  await writeFile(batchFile, `${batch.join('\n')}\n`);
  const args = [
    '-F', '/dev/null', '-i', fleet.keys.get('web1')!.keyPath, '-P', String(fleet.sshPort),
    '-o', `UserKnownHostsFile=${kh}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-b', batchFile, 'web1@127.0.0.1',
  ];
  let out = '';
  let code = 0;
  try {
    const r = await execFileP('sftp', args, { timeout: 60_000, maxBuffer: 8 << 20 });
    out = r.stdout + r.stderr;
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    code = typeof e.code === 'number' ? e.code : 1;
    out = (e.stdout ?? '') + (e.stderr ?? '');
  }
  assert.equal(code, 0, `the batch ran to its end (the last, unguarded get succeeded):\n${out}`);
  assert.ok(!out.includes(SECRET) && !out.includes(OUTSIDE_SECRET) && !out.includes('root:x:0:0'), `no secret in the client's output:\n${out}`);
  assert.match(out, /Permission denied/);
  // Only the good file arrived (plus whatever `get -r config/sub` could legally fetch: the module, not the planted link).
  const fetched = (await readdir(got)).sort();
  assert.deepEqual(fetched.filter((n) => n !== 'sub'), ['good']);
  if (fetched.includes('sub')) assert.deepEqual((await readdir(path.join(got, 'sub'))).sort(), ['module.nix']);
  assert.match(await readFile(path.join(got, 'good'), 'utf8'), /web1/);
  const logsDir = path.join(fleet.fleetDir, 'jails', 'web1', 'logs');
  assert.equal(await readFile(path.join(logsDir, '20240102-000000_openssh_success.log'), 'utf8'), 'a small log\n');
  const bigSize = (await lstat(path.join(logsDir, 'openssh-big.log')).catch(() => null))?.size ?? 0;
  assert.ok(bigSize <= QUOTA, `the over-quota upload stopped at ${bigSize} bytes`);
  assert.equal(await checksum([fleet.fleetDir, outside], path.join(fleet.fleetDir, 'jails', 'web1', 'logs')), before);
  // The published tree itself is untouched.
  assert.match(await readFile(path.join(fleet.fleetDir, 'jails', 'web1', 'versions', web1Hash, 'configuration.nix'), 'utf8'), /web1/);
});
