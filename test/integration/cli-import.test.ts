// `bento-hub import` and `deploy` around hosts that did not get registered:
// an upstream host whose key is already another host's is reported, and its
// directory is not copied into the fleet (a deploy would publish a jail
// nobody can log into); `deploy` of an unregistered host is UNKNOWN_HOST;
// the next steps give the agents the hub's real listen address. Real CLI
// processes on real fleet directories.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HUB_BIN, runCli } from '../helpers/fleet.js';
import { tmpDir } from '../helpers/proc.js';
import { generateEd25519 } from '../../common/platform/ed25519.js';

const pub = (comment: string): string => `${generateEd25519().public.trim()} ${comment}`;

async function put(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

/** An upstream tree: router and nas with keys in fleet.nix, a directory each. */
async function upstream(root: string, keys: { router: string; nas: string }): Promise<void> {
  await put(path.join(root, 'config.sh'), 'REMOTE_IP=old-hub.example\nREMOTE_PORT=22\n');
  await put(path.join(root, 'fleet.nix'), `{ ... }: let users = [
  { username = "router"; key = "${keys.router}"; }
  { username = "nas"; key = "${keys.nas}"; }
]; in { }\n`);
  await put(path.join(root, 'hosts/router/configuration.nix'), '{ }\n');
  await put(path.join(root, 'hosts/nas/configuration.nix'), '{ }\n');
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

test('import does not copy the directory of a host it could not register; deploy of it is UNKNOWN_HOST', async () => {
  const t = await tmpDir();
  try {
    const up = path.join(t.dir, 'upstream');
    const fleet = path.join(t.dir, 'fleet');
    const keys = { router: pub('root@router'), nas: pub('root@nas') };
    await upstream(up, keys);
    assert.equal((await runCli(HUB_BIN, ['init', '--dir', fleet, '--listen', '0.0.0.0:2400'])).code, 0);
    // nas's key already belongs to another host: its registration fails.
    assert.equal((await runCli(HUB_BIN, ['add-host', 'storage', '--key', keys.nas, '--dir', fleet])).code, 0);

    const dry = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet, '--dry-run', '--json']);
    assert.equal(dry.code, 1, dry.stderr);
    assert.equal((JSON.parse(dry.stdout) as { dirs: Array<{ dir: string; status: string }> }).dirs.find((d) => d.dir === 'nas')?.status, 'skipped', 'the dry run says so too');

    const r = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const rep = JSON.parse(r.stdout) as { hosts: Array<{ name: string; status: string; message?: string }>; dirs: Array<{ dir: string; status: string; message?: string }>; nextSteps: string[] };
    const nas = rep.hosts.find((h) => h.name === 'nas')!;
    assert.equal(nas.status, 'error');
    assert.match(nas.message ?? '', /already registered/);
    const nasDir = rep.dirs.find((d) => d.dir === 'nas')!;
    assert.equal(nasDir.status, 'skipped');
    assert.match(nasDir.message ?? '', /not copied: nas could not be registered/);
    assert.equal(rep.dirs.find((d) => d.dir === 'router')?.status, 'copied', 'the others are imported');
    assert.deepEqual((await readdir(path.join(fleet, 'hosts'))).sort(), ['router']);
    // The agents' hub URL: the hub's real port (hub.json "listen"), the old server's name for a wildcard listen.
    assert.ok(rep.nextSteps.some((s) => s.includes('hub = "ssh://old-hub.example:2400"')), rep.nextSteps.join('\n'));
    assert.ok(!rep.nextSteps.some((s) => s.includes(':2222')), rep.nextSteps.join('\n'));
    const text = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet]);
    assert.match(text.stdout, /^nas\s+configuration\s+0\s+skipped: not copied/m);

    // The admin copies nas's directory by hand anyway: deploy still refuses to publish it.
    await put(path.join(fleet, 'hosts/nas/configuration.nix'), '{ }\n');
    await writeFile(path.join(fleet, 'hub.json'), JSON.stringify({ ...JSON.parse(await readFile(path.join(fleet, 'hub.json'), 'utf8')), publish: { buildCommand: ['true'] } }));
    const named = await runCli(HUB_BIN, ['deploy', 'nas', '--dir', fleet]);
    assert.equal(named.code, 5, named.stderr);
    assert.match(named.stderr, /nas is not registered.*\[UNKNOWN_HOST\]/);
    const all = await runCli(HUB_BIN, ['deploy', '--json', '--dir', fleet]);
    assert.equal(all.code, 1, all.stderr);
    const rows = (JSON.parse(all.stdout) as { hosts: Array<{ host: string; result: string; message: string }> }).hosts;
    assert.equal(rows.find((h) => h.host === 'router')?.result, 'updated');
    const nasRow = rows.find((h) => h.host === 'nas')!;
    assert.equal(nasRow.result, 'refused');
    assert.match(nasRow.message, /^UNKNOWN_HOST: nas is not registered/);
    assert.equal(await exists(path.join(fleet, 'jails', 'nas', 'version.json')), false, 'nothing published for nas');
  } finally {
    await t.cleanup();
  }
});

test('the next steps use a specific listen address as it is', async () => {
  const t = await tmpDir();
  try {
    const up = path.join(t.dir, 'upstream');
    const fleet = path.join(t.dir, 'fleet');
    await upstream(up, { router: pub('root@router'), nas: pub('root@nas') });
    assert.equal((await runCli(HUB_BIN, ['init', '--dir', fleet, '--listen', '[fd00::1]:2500'])).code, 0);
    const r = await runCli(HUB_BIN, ['import', '--from', up, '--dir', fleet, '--dry-run', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as { nextSteps: string[] }).nextSteps.some((s) => s.includes('hub = "ssh://[fd00::1]:2500"')));
  } finally {
    await t.cleanup();
  }
});
