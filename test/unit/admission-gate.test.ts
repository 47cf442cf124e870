// The admission gate (hub/server/admission.ts) on real loopback sockets, with
// small limits so each rule shows in a few connections: per-source limit and
// credit, fair and bounded queue, slot lease, deadlines, garbage, penalties,
// eviction at the global cap. `start` stands in for the SSH server: it
// records which streams got a slot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { AdmissionGate } from '../../hub/server/admission.js';
import { DEFAULT_LIMITS, type AdmissionLimits } from '../../hub/server/admission-limits.js';
import { skipRepeatedGreeting } from '../../hub/server/banner.js';
import { silentLogger } from '../../common/platform/log.js';
import { waitFor } from '../helpers/proc.js';

const GREETING = Buffer.from('SSH-2.0-gate-test\r\n');

interface Rig { gate: AdmissionGate; port: number; started: Duplex[]; close(): Promise<void> }

async function rig(limits: Partial<AdmissionLimits>, random = Math.random): Promise<Rig> {
  const started: Duplex[] = [];
  const gate = new AdmissionGate({ limits: { ...DEFAULT_LIMITS, ...limits }, greeting: GREETING, start: (s) => started.push(s), log: silentLogger(), random });
  const server = net.createServer((sock) => {
    const t = gate.open(sock);
    if (t) gate.admit(t, sock);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    gate, port, started,
    close: async () => {
      gate.close();
      for (const s of started) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Peer { sock: net.Socket; got(): string; closed: Promise<void>; isClosed(): boolean }

async function peer(port: number, source: string, send?: string): Promise<Peer> {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress: source });
  let got = '';
  let closed = false;
  sock.on('data', (c: Buffer) => { got += c.toString('latin1'); });
  sock.on('error', () => undefined);
  const done = new Promise<void>((r) => sock.on('close', () => { closed = true; r(); }));
  await new Promise<void>((r) => { sock.once('connect', () => r()); sock.once('close', () => r()); });
  if (send !== undefined && !closed) sock.write(send);
  return { sock, got: () => got, closed: done, isClosed: () => closed };
}

/** Until the gate has processed what the peers sent (bounded). */
function until(what: string, fn: () => boolean): Promise<unknown> {
  return waitFor(what, fn, 3000, 10);
}

test('per-source limit, and credit for hosts that authenticated from the source (the NAT case)', async () => {
  const r = await rig({ perSourceUnauthenticated: 2 });
  try {
    const a = [await peer(r.port, '127.0.0.81', 'SSH-2.0-a\r\n'), await peer(r.port, '127.0.0.81', 'SSH-2.0-a\r\n')];
    const third = await peer(r.port, '127.0.0.81', 'SSH-2.0-a\r\n');
    await third.closed;
    assert.equal(third.got(), '', 'refused at accept: not even a greeting');
    assert.equal(a[0]!.got(), GREETING.toString(), 'an accepted connection gets the identification at once');
    assert.equal((await peer(r.port, '127.0.0.82')).isClosed(), false, 'another source is not limited');
    await until('two started', () => r.started.length === 2);
    r.gate.authenticated(r.started[0], 'web1');
    r.gate.authenticated(r.started[1], 'web2');
    assert.equal(r.gate.unauthenticated, 1, 'only the 127.0.0.82 one is left');
    const more = await Promise.all([1, 2, 3, 4].map(() => peer(r.port, '127.0.0.81', 'SSH-2.0-a\r\n')));
    const fifth = await peer(r.port, '127.0.0.81');
    await fifth.closed;
    assert.ok(more.every((p) => !p.isClosed()), 'limit 2 + 2 hosts of credit');
    assert.equal(r.gate.stats.total({ kind: 'refused', reason: 'per-source' }), 2);
  } finally {
    await r.close();
  }
});

test('the queue is fair: one source\'s backlog does not delay another source\'s connection by more than a turn', async () => {
  const r = await rig({ maxHandshakes: 1, handshakeSlotMs: 60_000, perSourceUnauthenticated: 100 });
  try {
    for (let i = 0; i < 10; i++) await peer(r.port, '127.0.0.83', `SSH-2.0-flood${i}\r\n`);
    await until('flood queued', () => r.gate.waiting === 9);
    const agent = await peer(r.port, '127.0.0.84', 'SSH-2.0-agent\r\n');
    await until('agent queued', () => r.gate.waiting === 10);
    assert.equal(r.started.length, 1);
    r.gate.authenticated(r.started[0], 'x1');
    r.gate.authenticated(r.started[1], 'x2');
    const third = r.started[2]!;
    assert.equal((third as net.Socket).remotePort, agent.sock.localPort, 'the other source got the third slot');
  } finally {
    await r.close();
  }
});

test('a handshake that stalls keeps its connection but gives up its slot after handshakeSlotMs; the bytes it sent reach the SSH server intact', async () => {
  const r = await rig({ maxHandshakes: 1, handshakeSlotMs: 1000 });
  try {
    await peer(r.port, '127.0.0.85', 'SSH-2.0-staller\r\n');
    await until('staller started', () => r.started.length === 1);
    const next = await peer(r.port, '127.0.0.86', 'SSH-2.0-next\r\nREST');
    await until('next queued', () => r.gate.waiting === 1);
    assert.equal(r.started.length, 1);
    await waitFor('second slot', () => r.started.length === 2, 2000, 20);
    assert.equal(r.gate.inProgress, 1, 'the staller no longer counts');
    const s = r.started[1]!;
    let seen = '';
    s.on('data', (c: Buffer) => { seen += c.toString(); });
    s.resume();
    await waitFor('replayed bytes', () => seen === 'SSH-2.0-next\r\nREST', 1000, 10);
    skipRepeatedGreeting(s, GREETING);
    s.write(GREETING);
    s.write('after');
    await waitFor('the write after the greeting', () => next.got().endsWith('after'), 1000, 10);
    assert.equal(next.got(), `${GREETING.toString()}after`, 'the identification is not sent twice');
  } finally {
    await r.close();
  }
});

test('the bytes read during the banner stage reach the SSH server in the buffer they were read into, not a copy from Buffer\'s shared pool', async () => {
  // ssh2 keeps small buffers for the connection's life (the identification,
  // the GCM tag); allocated from the pool right after a copy there, they keep
  // the copy's whole slab (64 KiB on Node 24) alive: ~1 KB per connected host.
  const r = await rig({});
  try {
    await peer(r.port, '127.0.0.90', `SSH-2.0-one-read\r\n${'K'.repeat(1000)}`);
    await until('started', () => r.started.length === 1);
    const s = r.started[0]!;
    const first = await new Promise<Buffer>((resolve) => { s.once('data', resolve); s.resume(); });
    assert.ok(first.toString('latin1').startsWith('SSH-2.0-one-read\r\n'));
    assert.equal(first.byteOffset, 0);
    assert.equal(first.buffer.byteLength, first.length, `a ${first.length}-byte chunk in a ${first.buffer.byteLength}-byte ArrayBuffer (Buffer.poolSize ${Buffer.poolSize})`);
  } finally {
    await r.close();
  }
});

test('deadlines, garbage and penalties: silent peers are cut at the banner deadline, non-SSH at once, and a source that keeps failing is refused', async () => {
  const r = await rig({ bannerTimeoutMs: 300, handshakeTimeoutMs: 600, penaltyFailures: 3, penaltyMs: 60_000, penaltyMaxMs: 60_000 });
  try {
    const http = await peer(r.port, '127.0.0.87', 'GET / HTTP/1.1\r\n');
    await http.closed;
    assert.equal(r.gate.stats.total({ kind: 'dropped', reason: 'garbage' }), 1);
    const silent = await Promise.all([1, 2, 3].map(() => peer(r.port, '127.0.0.88')));
    const t0 = Date.now();
    await Promise.all(silent.map((p) => p.closed));
    assert.ok(Date.now() - t0 < 1000, `cut after ${Date.now() - t0} ms`);
    assert.equal(r.gate.stats.total({ kind: 'timed-out', stage: 'banner' }), 3);
    assert.equal(r.gate.stats.total({ kind: 'penalised' }), 1);
    assert.equal(r.gate.penalisedSources, 1);
    const again = await peer(r.port, '127.0.0.88', 'SSH-2.0-again\r\n');
    await again.closed;
    assert.equal(again.got(), '');
    assert.equal(r.gate.stats.total({ kind: 'refused', reason: 'penalised' }), 1);
    const stalled = await peer(r.port, '127.0.0.89', 'SSH-2.0-slow\r\n');
    await stalled.closed;
    assert.equal(r.gate.stats.total({ kind: 'timed-out', stage: 'handshake' }), 1, 'a banner but no authentication: cut at the handshake deadline');
    assert.equal(r.gate.unauthenticated, 0);
  } finally {
    await r.close();
  }
});

test('bounded queue: early drop hits the source above its fair share, and a full queue drops the largest source\'s oldest', async () => {
  const r = await rig({ maxHandshakes: 1, handshakeSlotMs: 60_000, maxQueued: 3, earlyDropQueued: 2, earlyDropPercent: 100, perSourceUnauthenticated: 100 }, () => 0.5);
  try {
    for (let i = 0; i < 4; i++) await peer(r.port, '127.0.0.90', `SSH-2.0-a${i}\r\n`);
    await until('the fourth dropped early', () => r.gate.stats.total({ kind: 'dropped', reason: 'early-drop' }) === 1);
    assert.equal(r.gate.waiting, 2, 'one in the slot, two waiting, the fourth dropped early');
    await peer(r.port, '127.0.0.91', 'SSH-2.0-b0\r\n');
    await until('b0 queued', () => r.gate.waiting === 3);
    assert.equal(r.gate.stats.total({ kind: 'dropped', reason: 'early-drop' }), 1, 'below its fair share, the other source is never dropped early');
    await peer(r.port, '127.0.0.92', 'SSH-2.0-c0\r\n');
    await until('the flood\'s oldest made room', () => r.gate.stats.total({ kind: 'dropped', reason: 'queue-full' }) === 1);
    assert.equal(r.gate.waiting, 3);
  } finally {
    await r.close();
  }
});

test('at maxUnauthenticated, a newcomer from a small source evicts the largest source\'s oldest; the largest source is refused', async () => {
  const r = await rig({ maxUnauthenticated: 4, perSourceUnauthenticated: 100 });
  try {
    const flood = await Promise.all([1, 2, 3, 4].map(() => peer(r.port, '127.0.0.93')));
    await until('four in', () => r.gate.unauthenticated === 4);
    const agent = await peer(r.port, '127.0.0.94', 'SSH-2.0-agent\r\n');
    await flood[0]!.closed;
    assert.equal(agent.isClosed(), false);
    const more = await peer(r.port, '127.0.0.93');
    await more.closed;
    assert.equal(r.gate.stats.total({ kind: 'dropped', reason: 'evicted' }), 1);
    assert.equal(r.gate.stats.total({ kind: 'refused', reason: 'full' }), 1);
  } finally {
    await r.close();
  }
});

test('a quarter of the slots is kept for sources with credit: stalling strangers cannot take them all', async () => {
  const r = await rig({ maxHandshakes: 4, handshakeSlotMs: 60_000 });
  try {
    await peer(r.port, '127.0.0.95', 'SSH-2.0-web1\r\n');
    await until('web1 started', () => r.started.length === 1);
    r.gate.authenticated(r.started[0], 'web1');
    for (const src of ['127.0.0.96', '127.0.0.97', '127.0.0.98', '127.0.0.99']) await peer(r.port, src, 'SSH-2.0-stranger\r\n');
    await until('three strangers in, one waiting', () => r.started.length === 4 && r.gate.waiting === 1);
    assert.equal(r.gate.inProgress, 3, 'one slot stays free');
    await peer(r.port, '127.0.0.95', 'SSH-2.0-web2\r\n');
    await until('the credited source got the kept slot', () => r.started.length === 5);
    assert.equal(r.gate.waiting, 1, 'the stranger still waits');
  } finally {
    await r.close();
  }
});
