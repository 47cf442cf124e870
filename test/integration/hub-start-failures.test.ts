// A hub that cannot start leaves nothing behind and says why: a listen
// address it cannot use is the configuration's fault (CONFIG_INVALID, exit
// 2; a port another program holds: ADDRESS_IN_USE, exit 6), and every part that had started (state, admin socket, SSH listener,
// WebSocket listener) is closed again, so a corrected hub starts at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { freePort } from '../helpers/proc.js';
import { startHub } from '../../hub/daemon.js';
import { BentoError } from '../../common/protocol/errors.js';
import { silentLogger } from '../../common/platform/log.js';

/** A TCP port something else listens on, for as long as the test holds it. */
async function busyPort(): Promise<{ port: number; release: () => Promise<void> }> {
  const port = await freePort();
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  return { port, release: () => new Promise<void>((r) => s.close(() => r())) };
}

const canBind = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = net.createServer();
  s.once('error', () => resolve(false));
  s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
});

const answers = (socket: string): Promise<boolean> => new Promise((resolve) => {
  const c = net.connect(socket);
  c.once('connect', () => { c.destroy(); resolve(true); });
  c.once('error', () => resolve(false));
});

async function setHubJson(fleet: TestFleet, patch: Record<string, unknown>): Promise<void> {
  const file = path.join(fleet.fleetDir, 'hub.json');
  await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), ...patch }));
}

test('serve: a listen address the machine cannot use exits 2 with CONFIG_INVALID, one in use exits 6 with ADDRESS_IN_USE, both naming the setting', async () => {
  const fleet = await TestFleet.create();
  const busy = await busyPort();
  try {
    const notHere = await fleet.hubCli(['serve', '--listen', '192.0.2.1:2222'], 15_000);
    assert.equal(notHere.code, 2, notHere.stderr);
    assert.match(notHere.stderr, /cannot listen on 192\.0\.2\.1:2222 \("listen"\): not an address of this machine .*\[CONFIG_INVALID\]/);
    const inUse = await fleet.hubCli(['serve', '--listen', `127.0.0.1:${busy.port}`], 15_000);
    assert.equal(inUse.code, 6, inUse.stderr);
    assert.match(inUse.stderr, new RegExp(`127\\.0\\.0\\.1:${busy.port} is already in use by another program.*"listen".*\\[ADDRESS_IN_USE\\]`));
  } finally {
    await busy.release();
    await fleet.close();
  }
});

test('a listener that fails to start closes the ones before it: admin socket, SSH port, state; a corrected hub then starts', async () => {
  const fleet = await TestFleet.create();
  const busy = await busyPort();
  const socket = path.join(fleet.fleetDir, 'hub.sock');
  try {
    // The WebSocket listener starts after the admin socket and the SSH listener.
    await setHubJson(fleet, { wsListen: `127.0.0.1:${busy.port}` });
    await assert.rejects(startHub({ dir: fleet.fleetDir, log: silentLogger() }), (err: unknown) => {
      assert.ok(err instanceof BentoError, String(err));
      assert.equal(err.code, 'ADDRESS_IN_USE');
      assert.match(err.message, /"wsListen"/);
      return true;
    });
    assert.equal(await answers(socket), false, 'the admin socket was closed');
    assert.equal(await canBind(fleet.sshPort), true, 'the SSH port was released');

    // The dashboard starts last: the same for it.
    await setHubJson(fleet, { wsListen: null, dashboard: { listen: `127.0.0.1:${busy.port}`, tokenFile: null } });
    await assert.rejects(startHub({ dir: fleet.fleetDir, log: silentLogger() }), /already in use by another program[\s\S]*"dashboard.listen"/);
    assert.equal(await answers(socket), false);
    assert.equal(await canBind(fleet.sshPort), true);

    await setHubJson(fleet, { dashboard: null });
    const hub = await startHub({ dir: fleet.fleetDir, log: silentLogger() });
    try {
      assert.equal(await answers(socket), true);
      assert.equal(hub.sshAddress.port, fleet.sshPort);
    } finally {
      await hub.stop();
    }
    assert.equal(await answers(socket), false, 'stop() closes the admin socket');
  } finally {
    await busy.release();
    await fleet.close();
  }
});

test('startHub: an address that is not HOST:PORT is CONFIG_INVALID, before anything starts', async () => {
  const fleet = await TestFleet.create();
  try {
    await assert.rejects(startHub({ dir: fleet.fleetDir, log: silentLogger(), listen: 'not-an-address' }), (err: unknown) => err instanceof BentoError && err.code === 'CONFIG_INVALID' && /"listen" must be HOST:PORT/.test(err.message));
    assert.equal(await answers(path.join(fleet.fleetDir, 'hub.sock')), false);
  } finally {
    await fleet.close();
  }
});
