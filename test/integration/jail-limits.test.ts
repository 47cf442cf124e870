// Issue 4, the SFTP jail's limits: a host holds at most 32 open handles, and a
// log refused for that leaves nothing behind. The fleet (web1 and db1
// published, the hub running for real) comes from jail-helpers.ts; the escape
// attempts are in jail-escape-clients.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { TestFleet } from '../helpers/fleet.js';
import { call, connectSftp, createJailFleet } from './jail-helpers.js';

let fleet: TestFleet;

before(async () => {
  ({ fleet } = await createJailFleet());
});

after(async () => { await fleet?.close(); });

const connect = (host: string): ReturnType<typeof connectSftp> => connectSftp(fleet, host);

test('at most 32 open handles; a log refused for that leaves nothing behind and can be created later', async () => {
  const { client, sftp } = await connect('web1');
  const logsDir = path.join(fleet.fleetDir, 'jails', 'web1', 'logs');
  const handles: Buffer[] = [];
  try {
    for (let i = 0; i < 32; i++) {
      const h = await call((cb) => sftp.open('config/configuration.nix', 'r', cb as never));
      assert.ok(h.ok, `handle ${i + 1} of 32: ${JSON.stringify(h)}`);
      handles.push(h.value as Buffer);
    }
    const over = await call((cb) => sftp.open('config/configuration.nix', 'r', cb as never));
    assert.ok(!over.ok && /too many open handles/.test(over.message), JSON.stringify(over));
    const log = await call((cb) => sftp.open('logs/over-limit.log', 'w', cb as never));
    assert.ok(!log.ok && /too many open handles/.test(log.message), JSON.stringify(log));
    assert.ok(!(await readdir(logsDir)).includes('over-limit.log'), 'no file was created for the refused handle');
    for (const h of handles.splice(0)) await call((cb) => sftp.close(h, cb as never));
    const later = await call((cb) => sftp.open('logs/over-limit.log', 'w', cb as never));
    assert.ok(later.ok, `with handles free the same name can be created: ${JSON.stringify(later)}`);
    await call((cb) => sftp.close(later.value as Buffer, cb as never));
  } finally {
    for (const h of handles) await call((cb) => sftp.close(h, cb as never));
    client.end();
  }
});
