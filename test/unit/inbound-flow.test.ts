// Per-session inbound limits with SSH flow control (hub/server/inbound-gate.ts,
// issue 13 part 2), over real SSH: an ssh2 server runs the hub's control
// channel code (attachControl with an InboundMonitor), an ssh2 client writes
// to it. The one stand-in is the hub's message handler: it holds every message
// until the test lets go, as a host queue stuck behind slow durable writes does.
// Shown: once the limits are reached the hub stops reading, ssh2 stops
// extending the channel's window, and the client's writes block (its window
// is 0 and its data waits on its side) while the hub holds a bounded amount;
// after the handler catches up everything arrives, in order. A client that
// ignores the window is cut with INBOUND_OVERRUN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { generateEd25519 } from '../../common/platform/ed25519.js';
import { silentLogger } from '../../common/platform/log.js';
import { CONTROL_SUBSYSTEM, PROTOCOL_VERSION } from '../../common/protocol/version.js';
import type { AgentMessage } from '../../common/protocol/messages.js';
import { attachControl } from '../../hub/server/control.js';
import { LiveSession } from '../../hub/server/live-session.js';
import { InboundMonitor, SESSION_DEFAULTS, type SessionLimits } from '../../hub/server/inbound-gate.js';
import { sleep, waitFor, raceTimeout } from '../helpers/proc.js';

interface Rig {
  client: ssh2.Client;
  channel: ClientChannel;
  monitor: InboundMonitor;
  /** Messages the handler got, in order; each is held until release(). */
  got: AgentMessage[];
  release(): void;
  serverChannel(): import('ssh2').ServerChannel;
  received(): string;
  closed: Promise<void>;
  stop(): Promise<void>;
}

async function rig(limits: Partial<SessionLimits> = {}): Promise<Rig> {
  const hostKey = generateEd25519();
  const monitor = new InboundMonitor({ ...SESSION_DEFAULTS, ...limits }, silentLogger());
  const got: AgentMessage[] = [];
  let held: Array<() => void> = [];
  let holding = true;
  let srvChannel: import('ssh2').ServerChannel | null = null;
  const server = new ssh2.Server({ hostKeys: [hostKey.private] }, (conn) => {
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('error', () => undefined);
    conn.on('ready', () => {
      const s = new LiveSession('web1', conn, { carrier: 'ssh', endpoint: 'test', remoteAddress: '127.0.0.1:1' });
      // The transport's byte feed, as ssh-server.ts wires it.
      (conn as unknown as { _sock: net.Socket })._sock.on('data', () => s.inbound?.check());
      conn.on('session', (accept) => accept().on('subsystem', (acceptSub) => {
        srvChannel = acceptSub();
        attachControl(s, srvChannel, {
          log: silentLogger(), inbound: monitor,
          hooks: {
            heartbeatMs: () => 1000,
            onHello: () => undefined,
            onMessage: (_s, msg) => {
              got.push(msg);
              return holding ? new Promise<void>((resolve) => held.push(resolve)) : undefined;
            },
          },
        });
      }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = new ssh2.Client();
  const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
  client.on('error', () => undefined);
  const agentKey = generateEd25519();
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    client.on('ready', () => client.subsys(CONTROL_SUBSYSTEM, (err, ch) => (err ? reject(err) : resolve(ch))));
    client.connect({ host: '127.0.0.1', port, username: 'web1', privateKey: agentKey.private, readyTimeout: 10_000 });
  });
  let text = '';
  channel.on('data', (c: Buffer) => { text += c.toString(); });
  channel.write(`${JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, name: 'web1', agentVersion: 't', system: null, generation: null, configHash: null, capabilities: [] })}\n`);
  await waitFor('welcome', () => text.includes('"welcome"'), 10_000);
  return {
    client, channel, monitor, got, closed,
    release: () => { holding = false; const h = held; held = []; h.forEach((f) => f()); },
    serverChannel: () => srvChannel!,
    received: () => text,
    async stop() {
      client.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      monitor.close();
    },
  };
}

/** One job.output line of `size` bytes of data, numbered. */
function line(i: number, size: number): string {
  return `${JSON.stringify({ type: 'job.output', jobId: 'job-aaaaaaaa', stream: 'stdout', data: `${i} ${'x'.repeat(size)}` })}\n`;
}

test('over the limits the hub stops reading: the channel window is not extended and the client\'s writes block; everything arrives in order once the hub catches up', async () => {
  const r = await rig({ sessionQueuedMessages: 64, sessionQueuedBytes: 1024 * 1024, sessionBytesPerSecond: 1024 * 1024 * 1024, sessionBurstBytes: 1024 * 1024 * 1024 });
  try {
    // 40 MB offered as fast as the client's channel takes it.
    const total = 1300;
    let written = 0;
    for (let i = 0; i < total; i++) { r.channel.write(line(i, 30_000)); written++; }
    assert.equal(written, total);
    await waitFor('the hub to pause the channel', () => r.monitor.throttledNow === 1, 10_000);
    // Let whatever was in flight land, then nothing more may arrive.
    await sleep(500);
    const handled = r.got.length;
    const held = r.serverChannel().readableLength;
    await sleep(1500);
    assert.equal(r.got.length, handled, 'no message reaches the handler while paused');
    assert.equal(r.serverChannel().readableLength, held, 'no byte arrives while paused: the window is used up');
    assert.ok(handled <= 64 + 2, `handled ${handled}`);
    // What the hub holds: the messages in flight plus ssh2's read buffer, bounded by its window.
    assert.ok(held <= 4.5 * 1024 * 1024, `the paused channel holds ${held} bytes`);
    // The client's side: its window is spent and its writes wait there.
    const outgoing = (r.channel as unknown as { outgoing: { window: number } }).outgoing;
    assert.ok(outgoing.window < 32 * 1024, `the client's window is ${outgoing.window}`);
    assert.ok(r.channel.writableLength > 30 * 1024 * 1024, `the client holds ${r.channel.writableLength} unsent bytes`);
    assert.equal(r.channel.write(line(total, 10)), false, 'a write reports backpressure');
    // Meanwhile the hub tells the agent it is alive (its own heartbeats wait unread in the channel).
    assert.ok((r.received().match(/"type":"heartbeat"/g) ?? []).length >= 2, 'heartbeats from the hub while paused');
    assert.deepEqual(r.monitor.throttledTotal, { queue: 1, rate: 0 });

    r.release();
    await waitFor('every message', () => r.got.length === total + 1, 60_000, 100);
    const order = r.got.map((m) => Number((m as { data: string }).data.split(' ')[0]));
    assert.deepEqual(order, Array.from({ length: total + 1 }, (_, i) => i), 'all, in order, once');
    assert.equal(r.monitor.throttledNow, 0, 'reading again');
    await waitFor('the client to drain', () => r.channel.writableLength === 0, 10_000);
  } finally {
    await r.stop();
  }
});

test('a client that ignores the window is cut with INBOUND_OVERRUN once the paused channel holds more than sessionOverrunBytes', async () => {
  const r = await rig({ sessionQueuedMessages: 8, sessionOverrunBytes: 6 * 1024 * 1024, sessionBytesPerSecond: 1024 * 1024 * 1024, sessionBurstBytes: 1024 * 1024 * 1024 });
  try {
    // A hostile peer: whatever window the hub grants, it behaves as if it had plenty.
    const outgoing = (r.channel as unknown as { outgoing: { window: number } }).outgoing;
    const ignore = setInterval(() => { outgoing.window = 1 << 30; }, 1);
    try {
      for (let i = 0; i < 600; i++) { outgoing.window = 1 << 30; r.channel.write(line(i, 30_001)); }
      await raceTimeout(r.closed, 20_000, undefined);
    } finally {
      clearInterval(ignore);
    }
    assert.match(r.received(), /"code":"INBOUND_OVERRUN"/);
    assert.equal(r.monitor.overrunTotal, 1);
    assert.ok(r.got.length < 600, 'cut before it could deliver everything');
  } finally {
    await r.stop();
  }
});

test('a session is held to sessionBytesPerSecond past its burst: the hub reads no faster, and the client\'s writes wait', async () => {
  const rate = 2 * 1024 * 1024;
  const burst = 2 * 1024 * 1024;
  const r = await rig({ sessionBytesPerSecond: rate, sessionBurstBytes: burst });
  try {
    r.release(); // the handler keeps up: only the rate limits
    const total = 400; // 12 MB
    const t0 = Date.now();
    for (let i = 0; i < total; i++) r.channel.write(line(i, 30_000));
    // Sampled while it flows: never more than the burst plus the rate so far, plus what one window lets through.
    const window = 4.5 * 1024 * 1024;
    let samples = 0;
    while (r.got.length < total && Date.now() - t0 < 60_000) {
      const got = r.got.length * 30_100;
      const allowed = burst + (rate * (Date.now() - t0)) / 1000 + window;
      assert.ok(got <= allowed, `read ${got} bytes after ${Date.now() - t0} ms (allowed ${allowed})`);
      samples++;
      await sleep(100);
    }
    assert.equal(r.got.length, total, 'everything arrives');
    assert.ok(samples > 10, 'it took a while');
    assert.ok(r.monitor.throttledTotal.rate >= 1);
    assert.ok(r.channel.writableLength === 0);
  } finally {
    await r.stop();
  }
});
