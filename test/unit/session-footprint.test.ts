// What a connected agent keeps alive in the hub (docs/performance.md, "What
// a connected host costs the hub"): thousands of sessions live at once, so
// per-connection leftovers of the handshake and per-connection copies of
// what could be shared show up as KiB per host. Over real SSH: the hub's
// agent server (hub/server/ssh-server.ts, with its admission gate) and real
// ssh2 clients that authenticate, open the control channel and get their
// welcome, as agents do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import ssh2 from 'ssh2';
import type { Connection } from 'ssh2';
import { generateEd25519 } from '../../common/platform/ed25519.js';
import { silentLogger } from '../../common/platform/log.js';
import { CONTROL_SUBSYSTEM, PROTOCOL_VERSION } from '../../common/protocol/version.js';
import type { RegistryFile, RegistryView } from '../../hub/fleet/registry.js';
import { AgentServer } from '../../hub/server/ssh-server.js';
import type { LiveSession } from '../../hub/server/live-session.js';
import { freePort, waitFor } from '../helpers/proc.js';

// A full collection on demand, and V8's own view of an object's property
// storage (fast: a shared hidden class; slow: a hash table of its own).
v8.setFlagsFromString('--expose-gc');
v8.setFlagsFromString('--allow-natives-syntax');
const gc = vm.runInNewContext('gc') as () => void;
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;
v8.setFlagsFromString('--no-allow-natives-syntax');

const HOSTS = ['web1', 'web2', 'web3'];

interface Rig {
  server: AgentServer;
  port: number;
  sessions: Map<string, LiveSession>;
  /** What the gate and ssh2 handed out per connection, weakly: it must not outlive the handshake. */
  tickets: Array<WeakRef<object>>;
  infos: Array<WeakRef<object>>;
  clients: ssh2.Client[];
  connect(host: string): Promise<void>;
  stop(): Promise<void>;
}

async function rig(): Promise<Rig> {
  const keys = new Map(HOSTS.map((h) => [h, generateEd25519(h)]));
  const reg: RegistryFile = { version: 1, hosts: {} } as RegistryFile;
  const addedAt = new Date().toISOString();
  for (const [h, k] of keys) {
    (reg.hosts as Record<string, unknown>)[h] = { keys: [k.public.split(/\s+/).slice(0, 2).join(' ')], tags: [], ssh: {}, addedAt };
  }
  const registry: RegistryView = { refresh: async () => reg, snapshot: reg };
  const sessions = new Map<string, LiveSession>();
  const server = new AgentServer({
    hostKey: Buffer.from(generateEd25519('hub').private), registry, log: silentLogger(),
    hooks: { onHello: (s) => { sessions.set(s.name, s); }, onMessage() {}, onClose() {}, heartbeatMs: () => 25_000 },
  });
  const tickets: Array<WeakRef<object>> = [];
  const infos: Array<WeakRef<object>> = [];
  const open = server.admission.open.bind(server.admission);
  server.admission.open = (sock) => {
    const t = open(sock);
    if (t) tickets.push(new WeakRef(t));
    return t;
  };
  // ssh2 hands every connection listener the same ClientInfo object.
  (server as unknown as { server: ssh2.Server }).server.on('connection', (_c: Connection, info: object) => { infos.push(new WeakRef(info)); });
  const port = await freePort();
  await server.listen('127.0.0.1', port);
  const clients: ssh2.Client[] = [];
  return {
    server, port, sessions, tickets, infos, clients,
    async connect(host) {
      const c = new ssh2.Client();
      clients.push(c);
      c.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        c.on('ready', () => c.subsys(CONTROL_SUBSYSTEM, (err, ch) => {
          if (err) return reject(err);
          let got = '';
          ch.on('data', (d: Buffer) => { got += d.toString(); if (got.includes('"welcome"')) resolve(); });
          ch.write(`${JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, name: host, agentVersion: 't', system: null, generation: null, configHash: null, capabilities: [] })}\n`);
        }));
        c.connect({ host: '127.0.0.1', port, username: host, privateKey: keys.get(host)!.private, readyTimeout: 10_000, keepaliveInterval: 0 });
      });
      // The reverse forward every agent asks for.
      await new Promise<void>((resolve, reject) => c.forwardIn('127.0.0.1', 22, (err) => (err ? reject(err) : resolve())));
    },
    async stop() {
      for (const c of clients) c.end();
      await server.close();
    },
  };
}

function socketOf(s: LiveSession): net.Socket {
  return (s.conn as unknown as { _sock: net.Socket })._sock;
}

test('a connected agent keeps nothing of its handshake: not its admission ticket (nor its timers), not ssh2\'s ClientInfo', async () => {
  const r = await rig();
  try {
    for (const h of HOSTS) await r.connect(h);
    await waitFor('three sessions', () => r.sessions.size === 3, 10_000);
    assert.equal(r.tickets.length, 3);
    assert.equal(r.infos.length, 3);
    gc();
    assert.deepEqual(r.tickets.map((w) => w.deref() === undefined), [true, true, true], 'every ticket collected once its connection authenticated');
    assert.deepEqual(r.infos.map((w) => w.deref() === undefined), [true, true, true], 'ssh2\'s connection info (its parsed identification) collected');
    for (const s of r.sessions.values()) {
      assert.equal(socketOf(s).listenerCount('error'), 1, 'the gate\'s placeholder error listener is gone once ssh2 has its own');
      assert.equal(s.conn.listenerCount('authentication'), 0, 'no authentication listener after authentication');
    }
  } finally {
    await r.stop();
  }
});

test('a connected agent\'s socket keeps fast properties (nothing deleted from it: on Node 24 a delete makes them a 1.6 KB hash table)', async () => {
  const r = await rig();
  try {
    await r.connect('web1');
    await waitFor('the session', () => r.sessions.size === 1, 10_000);
    const sock = socketOf(r.sessions.get('web1')!);
    assert.equal(hasFastProperties(sock), true);
    assert.deepEqual(Object.getOwnPropertySymbols(sock).map((s) => s.description).filter((d) => d?.startsWith('bento')), [], 'no Bento bookkeeping on the socket');
  } finally {
    await r.stop();
  }
});

test('the listeners for what the hub refuses are shared by every connection and session, not made per connection', async () => {
  const r = await rig();
  try {
    await r.connect('web1');
    await r.connect('web2');
    await waitFor('two sessions', () => r.sessions.size === 2, 10_000);
    const [a, b] = [r.sessions.get('web1')!, r.sessions.get('web2')!];
    for (const ev of ['tcpip', 'openssh.streamlocal']) {
      assert.equal(a.conn.listenerCount(ev), 1);
      assert.equal(a.conn.listeners(ev)[0], b.conn.listeners(ev)[0], `one ${ev} listener for both`);
    }
    assert.deepEqual([a.forwards, b.forwards], [['127.0.0.1:22'], ['127.0.0.1:22']], 'the reverse forward is recorded');
  } finally {
    await r.stop();
  }
});
