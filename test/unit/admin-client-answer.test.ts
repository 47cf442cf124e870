// The CLI reads one answer line of more than 16 MiB from the hub (`status
// --json` of 45,000 hosts is ~16.8 MB; it failed with PROTOCOL_OVERSIZED),
// and still refuses one past its own bound. A real unix socket server plays
// the hub, writing one long line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { adminCall } from '../../hub/admin/client.js';

async function hubAnswering(line: (sock: net.Socket) => void): Promise<{ socket: string; close: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bento-admin-'));
  const socket = path.join(dir, 'hub.sock');
  const server = net.createServer((s) => { s.once('data', () => line(s)); s.on('error', () => undefined); });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, close: async () => { await new Promise((r) => server.close(r)); await rm(dir, { recursive: true, force: true }); } };
}

test('an answer line of 20 MB (over 16 MiB) is read whole', async () => {
  const hosts = Array.from({ length: 50_000 }, (_, i) => ({ name: `h${i}`, state: 'up to date', detail: 'x'.repeat(380) }));
  const hub = await hubAnswering((s) => s.end(`${JSON.stringify({ ev: 'status', hosts })}\n`));
  try {
    const e = await adminCall(hub.socket, { op: 'status' }, 'status');
    assert.equal(e.hosts.length, 50_000);
  } finally {
    await hub.close();
  }
});

test('an answer line past the CLI\'s bound (256 MiB) is refused with PROTOCOL_OVERSIZED, not buffered on', async () => {
  const hub = await hubAnswering((s) => {
    const chunk = Buffer.alloc(16 * 1024 * 1024, 0x61);
    let sent = 0;
    const more = (): void => {
      while (sent < 17 && !s.destroyed) { sent++; if (!s.write(chunk)) { s.once('drain', more); return; } }
      s.end('\n');
    };
    more();
  });
  try {
    await assert.rejects(adminCall(hub.socket, { op: 'status' }, 'status'), (err: Error & { code?: string }) => err.code === 'PROTOCOL_OVERSIZED');
  } finally {
    await hub.close();
  }
});

test('a CLI that asks for gzip reads a hub that ignores it (a plain line), and a broken gzip answer is PROTOCOL_MALFORMED', async () => {
  const older = await hubAnswering((s) => s.end(`${JSON.stringify({ ev: 'list', clients: [{ name: 'web1' }] })}\n`));
  try {
    const e = await adminCall(older.socket, { op: 'list', gzip: true }, 'list');
    assert.deepEqual(e.clients.map((c) => c.name), ['web1']);
  } finally {
    await older.close();
  }
  const whole = gzipSync(`${JSON.stringify({ ev: 'list', clients: [] })}\n`);
  const broken = await hubAnswering((s) => s.end(Buffer.concat([whole.subarray(0, 10), Buffer.from('not deflate at all')])));
  try {
    await assert.rejects(adminCall(broken.socket, { op: 'list', gzip: true }, 'list'), (err: Error & { code?: string }) => err.code === 'PROTOCOL_MALFORMED');
  } finally {
    await broken.close();
  }
  const cut = await hubAnswering((s) => s.end(whole.subarray(0, whole.length - 12)));
  try {
    await assert.rejects(adminCall(cut.socket, { op: 'list', gzip: true }, 'list'), (err: Error & { code?: string }) => err.code === 'PROTOCOL_MALFORMED');
  } finally {
    await cut.close();
  }
});
