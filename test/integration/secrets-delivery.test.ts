// Secrets outside the Nix store (issue 9): hosts/NAME/secrets/ goes to that
// host only, over its own tunnel, into secretsDir with the declared owner,
// group and mode, atomically replaced on rotation. It is never published
// (jails/), never in the Nix store, never in any log, and another host cannot
// read it through any path, SFTP included.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import ssh2 from 'ssh2';
import type { SFTPWrapper } from 'ssh2';
import { TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';

const execFileP = promisify(execFile);
const DB = `db-${Math.random().toString(36).slice(2)}-S3CRET`;
const API = `api-${Math.random().toString(36).slice(2)}-T0KEN`;
const ROTATED = `db-${Math.random().toString(36).slice(2)}-ROTATED`;
let fleet: TestFleet;
let sec1 = '';
let sec2 = '';

before(async () => {
  fleet = await TestFleet.create({ hubSettings: { publish: { buildCommand: ['true'] } } });
  const h = path.join(fleet.fleetDir, 'hosts', 'web1');
  await mkdir(path.join(h, 'secrets'), { recursive: true });
  await writeFile(path.join(h, 'configuration.nix'), '{ ... }: { }\n');
  await writeFile(path.join(h, 'secrets', 'db-password'), DB);
  await writeFile(path.join(h, 'secrets', 'api-token'), API);
  await writeFile(path.join(h, 'secrets', 'manifest.json'), JSON.stringify({ files: { 'db-password': { owner: 'nobody', group: 'nogroup', mode: '0440' } } }));
  await mkdir(path.join(fleet.fleetDir, 'hosts', 'web2'), { recursive: true });
  await writeFile(path.join(fleet.fleetDir, 'hosts', 'web2', 'configuration.nix'), '{ ... }: { }\n');
  await fleet.addHost('web1');
  await fleet.addHost('web2');
  await fleet.startHub();
  sec1 = path.join(fleet.dir, 'run1', 'bento-secrets');
  sec2 = path.join(fleet.dir, 'run2', 'bento-secrets');
  fleet.startAgent('web1', await fleet.agentConfig('web1', { secretsDir: sec1 }));
  fleet.startAgent('web2', await fleet.agentConfig('web2', { secretsDir: sec2 }));
  await fleet.waitConnected(['web1', 'web2']);
});
after(async () => { await fleet?.close(); });

test('secrets land in secretsDir with the declared owner, group and mode', async () => {
  await waitFor('secrets delivered', () => existsSync(path.join(sec1, 'db-password')), 10_000);
  const db = await stat(path.join(sec1, 'db-password'));
  assert.equal(db.mode & 0o7777, 0o440);
  assert.equal(db.uid, 65534);
  assert.equal(db.gid, 65534);
  const api = await stat(path.join(sec1, 'api-token'));
  assert.equal(api.mode & 0o7777, 0o400, 'undeclared files default to 0400');
  assert.equal(api.uid, 0);
  assert.equal(await readFile(path.join(sec1, 'db-password'), 'utf8'), DB);
  assert.equal(await readFile(path.join(sec1, 'api-token'), 'utf8'), API);
  assert.equal(existsSync(path.join(sec1, 'manifest.json')), false, 'the manifest itself is not delivered');
  assert.ok((await lstat(sec1)).isSymbolicLink(), 'secretsDir is a symlink switched atomically');
});

test('another host gets none of them', async () => {
  await sleepMs(500);
  assert.equal(existsSync(sec2), false, 'web2 had no secrets, so nothing was written for it');
  assert.equal(existsSync(`${sec2}.d`), false);
});

test('a deploy publishes the configuration but not secrets/', async () => {
  const r = await fleet.hubCli(['deploy', 'web1', 'web2']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const jails = path.join(fleet.fleetDir, 'jails');
  const files = await walk(jails);
  assert.ok(files.some((f) => f.endsWith('configuration.nix')), 'something was published');
  assert.ok(!files.some((f) => f.includes('/secrets/') || f.endsWith('db-password')), files.join('\n'));
  for (const f of files) {
    const c = await readFile(f).catch(() => Buffer.alloc(0));
    assert.ok(!c.includes(DB) && !c.includes(API), `${f} holds a secret`);
  }
});

test('another host cannot read them through SFTP, by any path', async () => {
  const c = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    c.on('ready', () => resolve()).on('error', reject);
    c.connect({ host: '127.0.0.1', port: fleet.sshPort, username: 'web2', privateKey: readFileSync(fleet.keys.get('web2')!.keyPath) });
  });
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) => c.sftp((err, s) => (err ? reject(err) : resolve(s))));
  const tryRead = (p: string): Promise<string | null> => new Promise((resolve) => {
    sftp.readFile(p, (err, data) => resolve(err ? null : data.toString()));
  });
  for (const p of ['/secrets/db-password', '/config/secrets/db-password', '/../hosts/web1/secrets/db-password',
    '/config/../../web1/secrets/db-password', '/hosts/web1/secrets/db-password', `${sec1}/db-password`, '/config/db-password']) {
    assert.equal(await tryRead(p), null, `web2 read ${p}`);
  }
  const root = await new Promise<string[]>((resolve) => sftp.readdir('/', (err, list) => resolve(err ? [] : list.map((e) => e.filename))));
  assert.ok(!root.includes('secrets'), `jail root lists ${root.join(', ')}`);
  c.end();
});

test('rotation: changed content is a new version, atomically replacing the old one', async () => {
  const before = await readlink(sec1);
  await writeFile(path.join(fleet.fleetDir, 'hosts', 'web1', 'secrets', 'db-password'), ROTATED);
  // The agent fetches at each connection (and before each job): reconnect it.
  await fleet.agents.get('web1')!.stop();
  const agent = fleet.startAgent('web1', path.join(fleet.dir, 'web1.json'));
  // The switch is visible before the old version is removed: wait for the
  // agent to say the whole update (switch, then cleanup) is done.
  await waitFor('secrets updated', () => /secrets updated/.test(agent.output()), 15_000);
  assert.equal(await readFile(path.join(sec1, 'db-password'), 'utf8'), ROTATED);
  const afterLink = await readlink(sec1);
  assert.notEqual(afterLink, before);
  assert.equal(existsSync(before), false, 'the old version was removed');
  assert.deepEqual(await readdir(`${sec1}.d`), [path.basename(afterLink)]);
  assert.equal((await stat(path.join(sec1, 'db-password'))).mode & 0o7777, 0o440);
});

test('secrets never appear in the Nix store, the hub or agent logs, or the hub state', async () => {
  const all = [DB, API, ROTATED];
  const outputs = [fleet.hub!.output(), ...[...fleet.agents.values()].map((a) => a.output())];
  for (const o of outputs) for (const s of all) assert.ok(!o.includes(s), 'a secret appeared in a log');
  assert.match(fleet.hub!.output(), /secrets delivered/);
  for (const s of all) {
    const g = await execFileP('grep', ['-rlF', s, '/nix/store', path.join(fleet.fleetDir, 'state'), path.join(fleet.fleetDir, 'jails')]).catch((e: { code?: number; stdout?: string }) => ({ stdout: e.stdout ?? '', code: e.code }));
    assert.equal(g.stdout.trim(), '', `found in ${g.stdout}`);
  }
  for (const d of [path.join(fleet.dir, 'state-web1'), path.join(fleet.dir, 'state-web2')]) {
    for (const f of await walk(d)) {
      const c = await readFile(f).catch(() => Buffer.alloc(0));
      for (const s of all) assert.ok(!c.includes(s), `${f} holds a secret`);
    }
  }
});

function sleepMs(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const ents = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of ents) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}
