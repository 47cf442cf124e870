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
import { gunzipSync } from 'node:zlib';
import { adminCall, adminRequest } from '../../hub/admin/client.js';
import { BentoError } from '../../common/protocol/errors.js';
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

// A large `list` or `status` answer asked for with gzip (hub/admin/gzip.ts) leaves compressed, and the CLI's
// client reads it back as the same event; an error raised after the request is compressed like the rest.
test('a gzip answer: compressed on the wire (under a fifth of the plain bytes), read back whole by the client; errors too', async () => {
  const { dir, cleanup } = await tmpDir('bento-admin-');
  const file = path.join(dir, 'hub.sock');
  const clients = Array.from({ length: 20_000 }, (_, i) => ({
    name: `host-${i}`, hub: `hub${1 + (i % 3)}`, remoteAddress: `127.0.0.1:${20_000 + i}`, carrier: 'ssh', endpoint: 'ssh://127.0.0.1:2222',
    connectedSince: new Date(1_800_000_000_000 + i * 1000).toISOString(), agentVersion: '0.9.0', lastHeartbeat: new Date(1_800_000_000_000 + i * 7).toISOString(),
    system: 'x86_64-linux', generation: i % 97, configHash: `sha256-${String(i * 7919).padStart(43, '0')}`, runningJob: null, queuedJob: null,
  }));
  const handler: AdminHandler = async (req, reply) => {
    if (req.op === 'status') throw new BentoError('STATE_CONFLICT', 'raised after the request');
    reply({ ev: 'list', clients });
  };
  const server = new AdminServer(file, handler, silentLogger());
  await server.listen(null);
  const raw = (req: object): Promise<Buffer> => new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const s = net.connect(file, () => s.write(`${JSON.stringify(req)}\n`));
    s.on('data', (c: Buffer) => parts.push(c)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject);
  });
  try {
    const [plain, packed] = await Promise.all([raw({ op: 'list' }), raw({ op: 'list', gzip: true })]);
    assert.equal(plain[0], 0x7b, 'no gzip asked: a plain line');
    assert.equal(packed[0], 0x1f, 'gzip asked: a gzip stream');
    assert.ok(packed.length * 5 < plain.length, `${packed.length} compressed bytes for ${plain.length} plain`);
    assert.deepEqual(JSON.parse(gunzipSync(packed).toString()), JSON.parse(plain.toString()));
    const e = await adminCall(file, { op: 'list', gzip: true }, 'list');
    assert.deepEqual(e.clients, clients);
    await assert.rejects(adminCall(file, { op: 'status', gzip: true }, 'status'), (err: BentoError) => err.code === 'STATE_CONFLICT' && /raised after/.test(err.message));
  } finally {
    await server.close();
    await cleanup();
  }
});
