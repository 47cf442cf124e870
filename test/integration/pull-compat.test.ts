// Issue 4, compatibility: the pull also works against a stock OpenSSH sftp
// chroot laid out like upstream Bento (config/, logs/, last_change_date), so
// existing Bento servers can keep serving while a fleet migrates. A real sshd
// (ChrootDirectory + ForceCommand internal-sftp) serves the layout; the agent
// ("pullFrom") converges on it by its timer, rebuilds with real Nix, uploads
// its log into logs/ with upstream's naming, and follows a change signalled
// the upstream way (touching last_change_date).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TestFleet, CLIENT_BIN, runCli } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';
import { startSshd, type Sshd } from '../fixtures/sshd.js';
import { makeNixEnv, nixAvailable, nixUnavailableReason, writeFixtureConfig, currentSystemPath, type NixEnv } from '../fixtures/nix.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import { hashTree } from '../../common/platform/tree-hash.js';

const sshdMissing = ['/usr/sbin/sshd', '/usr/bin/sshd', '/sbin/sshd'].some((p) => existsSync(p)) ? false : 'sshd not installed (openssh-server)';
const skip = sshdMissing || (nixAvailable() ? false : nixUnavailableReason()) || (process.getuid?.() !== 0 ? 'needs root (sshd ChrootDirectory)' : false);

let fleet: TestFleet;
let sshd: Sshd;
let base: string;
let chroot: string;
let nix: NixEnv;
let cfgFile: string;
let stateDir: string;

before(async () => {
  if (skip) return;
  fleet = await TestFleet.create();
  const key = await fleet.addHost('web1');
  // A chroot and all its parents must be root-owned and not group/world writable: not under /tmp.
  await mkdir('/srv', { recursive: true, mode: 0o755 });
  base = await mkdtemp('/srv/bento-compat-');
  await chmod(base, 0o755);
  chroot = path.join(base, 'web1');
  await mkdir(path.join(chroot, 'config'), { recursive: true, mode: 0o755 });
  await mkdir(path.join(chroot, 'logs'), { mode: 0o755 });
  // Upstream's layout: the host's files plus the scripts its deploy generates.
  await writeFixtureConfig(path.join(chroot, 'config', 'configuration.nix'), { host: 'web1', label: 'up1' });
  await writeFile(path.join(chroot, 'config', 'bootstrap.sh'), '#!/bin/sh\necho upstream bootstrap\n', { mode: 0o755 });
  await writeFile(path.join(chroot, 'config', 'update.sh'), '#!/bin/sh\necho upstream update\n', { mode: 0o755 });
  await writeFile(path.join(chroot, 'last_change_date'), '');
  sshd = await startSshd({
    dir: fleet.dir,
    authorizedKeys: [key.publicKey],
    extraConfig: ['Match User root', `  ChrootDirectory ${chroot}`, '  ForceCommand internal-sftp', '  AllowTcpForwarding no', '  X11Forwarding no'],
  });
  nix = await makeNixEnv(path.join(fleet.dir, 'nix'));
  stateDir = path.join(fleet.dir, 'state-web1');
  cfgFile = await fleet.agentConfig('web1', {
    configuration: path.join(stateDir, 'config', 'configuration.nix'),
    rebuildEnv: nix.env, currentSystem: nix.currentSystem, systemProfile: nix.profile, rollback: false,
    pullIntervalMs: 1000, pullJitterMs: 100,
    // The hub is not running: the tunnel never comes up; the old server is all there is.
    backoff: { initialMs: 600_000, maxMs: 600_000 },
    pullFrom: { url: `ssh://127.0.0.1:${sshd.port}`, user: 'root', hostFingerprint: fingerprintOfKeyLine(sshd.hostKeyPublic) },
  });
});

after(async () => {
  await sshd?.stop();
  await fleet?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

test('an agent pulls from a stock sshd chroot (upstream layout), rebuilds, uploads its log, and follows last_change_date', { skip }, async () => {
  const agent = fleet.startAgent('web1', cfgFile);
  try {
    await waitFor('web1 runs up1', async () => ((await currentSystemPath(nix)) ?? '').endsWith('-nixos-system-web1-up1'), 25_000, 100);
    // The installed tree is exactly the server's config/ (scripts included), verified by hash.
    const expected = (await hashTree(path.join(chroot, 'config'))).hash;
    const st = JSON.parse(await readFile(path.join(stateDir, 'pull', 'state.json'), 'utf8')) as { base: string; upstreamStamp: string };
    assert.equal(st.base, expected);
    assert.match(st.upstreamStamp, /^0:\d+$/);
    // The log landed in the chroot's logs/, named the upstream way, gzip-compressed.
    const logs = await waitFor('a log in logs/', async () => { const l = await readdir(path.join(chroot, 'logs')); return l.length ? l : null; }, 10_000, 100);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /^\d{8}-\d{6}_[a-z0-9]{32}-nixos-system-web1-up1_g1_success\.log\.gz$/);
    const text = gunzipSync(await readFile(path.join(chroot, 'logs', logs[0]!))).toString('utf8');
    assert.match(text, /TEST STAND-IN for nixos-rebuild/);

    // A change, signalled as upstream does: new files, then touch last_change_date.
    await writeFixtureConfig(path.join(chroot, 'config', 'configuration.nix'), { host: 'web1', label: 'up2' });
    const later = new Date(Date.now() + 10_000);
    await utimes(path.join(chroot, 'last_change_date'), later, later);
    await waitFor('web1 runs up2', async () => ((await currentSystemPath(nix)) ?? '').endsWith('-nixos-system-web1-up2'), 25_000, 100);
    await waitFor('two logs', async () => (await readdir(path.join(chroot, 'logs'))).length === 2, 10_000, 100);
    assert.match(agent.output(), /"via":"ssh:\/\/127\.0\.0\.1:\d+".*installed a new published configuration/);
  } finally {
    await agent.stop();
  }

  // The one-shot CLI against the same server: nothing changed, so a single STAT decides.
  const r = await runCli(CLIENT_BIN, ['pull', '--config', cfgFile, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { status: string; layout: string; bytesIn: number; bytesOut: number };
  assert.equal(res.status, 'unchanged');
  assert.equal(res.layout, 'upstream');
  console.log(`# no-change poll against stock OpenSSH sshd (upstream layout): ${res.bytesIn + res.bytesOut} B (in ${res.bytesIn}, out ${res.bytesOut})`);
  // The sshd's host key is pinned: another fingerprint is refused.
  const wrong = JSON.parse(await readFile(cfgFile, 'utf8')) as { pullFrom: { hostFingerprint: string } };
  wrong.pullFrom.hostFingerprint = fleet.fingerprint;
  const wrongFile = path.join(fleet.dir, 'wrong.json');
  await writeFile(wrongFile, JSON.stringify(wrong));
  const refused = await runCli(CLIENT_BIN, ['pull', '--config', wrongFile]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /HOST_KEY_MISMATCH/);
});
