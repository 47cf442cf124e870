// The admin socket's replies (hub/admin/server.ts) on a real Unix socket:
// events made in one event-loop iteration leave together, however many
// callbacks made them (a fan-out's "started" and "end" events come from one
// agent answer each), and in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { silentLogger } from '../../common/platform/log.js';
import { AdminServer, type AdminHandler } from '../../hub/admin/server.js';
import { adminRequest } from '../../hub/admin/client.js';
import type { AdminEvent } from '../../common/protocol/admin.js';
import { tmpDir } from '../helpers/proc.js';

test('admin replies made by many callbacks of one loop iteration go to the kernel in one write, in order', async () => {
  const { dir, cleanup } = await tmpDir('bento-admin-');
  const file = path.join(dir, 'hub.sock');
  let writes = 0;
  const n = 200;
  const handler: AdminHandler = async (_req, reply, sock) => {
    // What reaches the kernel: each _write/_writev of the socket is one system call.
    const s = sock as net.Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    const w = s._write.bind(s);
    const wv = s._writev.bind(s);
    s._write = (...a: unknown[]) => { writes += 1; w(...a); };
    s._writev = (...a: unknown[]) => { writes += 1; wv(...a); };
    // N callbacks of the same timers phase, as N agent answers read in one poll: one event each.
    await new Promise<void>((resolve) => {
      let left = n;
      for (let i = 0; i < n; i++) {
        setTimeout(() => {
          reply({ ev: 'started', host: `host-${i}`, jobId: `job-${i}` });
          if (--left === 0) resolve();
        }, 5);
      }
    });
    reply({ ev: 'done' });
  };
  const server = new AdminServer(file, handler, silentLogger());
  await server.listen(null);
  try {
    const conn = await adminRequest(file, { op: 'ping' });
    const got: AdminEvent[] = [];
    for await (const e of conn.events) got.push(e);
    assert.equal(got.length, n + 1);
    assert.deepEqual(got.slice(0, n).map((e) => (e.ev === 'started' ? e.host : e.ev)), Array.from({ length: n }, (_, i) => `host-${i}`));
    // Before: each callback's event was uncorked on its own tick, one write each (200 here).
    assert.ok(writes <= 3, `${writes} writes for ${n + 1} events`);
  } finally {
    await server.close();
    await cleanup();
  }
});
