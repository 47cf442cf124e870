// Hostile peers for the hostile-*.test.ts files (issue 13): the siege itself
// is test/helpers/siege.ts (the bench uses it too); here, WebSocket frames for
// it, a probe for refusal at accept, and when a legitimate agent appeared in
// the hub's log.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import { sleep, type Daemon } from '../helpers/proc.js';
import { CONTROL_SUBSYSTEM, PROTOCOL_VERSION } from '../../common/protocol/version.js';
import { parsePrometheusText } from '../../common/platform/prometheus.js';

export { siege, loopbackSources, trickle, type Siege, type SiegeOptions, type ClosedConn } from '../helpers/siege.js';

/** A complete, valid WebSocket upgrade request for `path` (the client half of the HTTP handshake). */
export function upgradeRequest(port: number, path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

/** One masked binary WebSocket frame from a client (payload < 126 bytes). */
export function clientFrame(payload: string): Buffer {
  const data = Buffer.from(payload);
  const mask = randomBytes(4);
  const masked = Buffer.from(data.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x82, 0x80 | data.length]), mask, masked]);
}

/**
 * Connect from `source` and report whether the hub refused at once: closed
 * within `withinMs` without sending a byte. A connection that is accepted
 * (the hub sends its SSH identification, or just keeps it open) is not.
 */
export function refusedAtOnce(port: number, source: string, withinMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress: source });
    let got = false;
    const t = setTimeout(() => { sock.destroy(); resolve(false); }, withinMs);
    sock.on('data', () => { got = true; clearTimeout(t); sock.destroy(); resolve(false); });
    sock.on('error', () => undefined);
    sock.on('close', () => { clearTimeout(t); if (!got) resolve(true); });
  });
}

const CONNECTED = /"msg":"agent connected"/;

/** How many "agent connected" lines for `host` the hub has logged so far. */
export function connectedLines(hub: Daemon, host: string): number {
  return hub.output().split('\n').filter((l) => CONNECTED.test(l) && l.includes(`"host":"${host}"`)).length;
}

/**
 * Until the hub logs one more "agent connected" for `host` than `before`;
 * resolves with the ms since `t0`, or Infinity after `limitMs` (bounded).
 */
export async function connectedAfter(hub: Daemon, host: string, before: number, t0: number, limitMs: number): Promise<number> {
  while (Date.now() - t0 < limitMs) {
    if (connectedLines(hub, host) > before) return Date.now() - t0;
    await sleep(25);
  }
  return Infinity;
}

/** The hub's /metrics as name{labels} -> value. */
export async function scrape(url: string): Promise<Map<string, number>> {
  return parsePrometheusText(await (await fetch(url)).text());
}

export interface HeldAgent { isUp(): boolean; attempts(): number; stop(): void }

/**
 * An agent as the hub sees it, in this process (so many can share one source
 * address cheaply): ssh2 with the host's key from `localAddress`, the control
 * channel, hello; up once the welcome arrives. It reconnects like the real
 * agent after a refusal or a lost connection (short backoff; at most 300
 * attempts).
 */
export function holdAgent(o: { port: number; localAddress: string; name: string; privateKey: Buffer }): HeldAgent {
  let up = false;
  let stopped = false;
  let attempts = 0;
  let client: ssh2.Client | null = null;
  const connect = (): void => {
    if (stopped || attempts >= 300) return;
    attempts++;
    const c = new ssh2.Client();
    client = c;
    const sock = net.connect({ host: '127.0.0.1', port: o.port, localAddress: o.localAddress });
    sock.on('error', () => undefined);
    c.on('error', () => undefined);
    c.on('ready', () => c.subsys(CONTROL_SUBSYSTEM, (err, ch) => {
      if (err) { c.end(); return; }
      ch.on('data', (d: Buffer) => { if (d.toString().includes('"type":"welcome"')) up = true; });
      ch.write(`${JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, name: o.name, agentVersion: 'held', system: null, generation: null, configHash: null, capabilities: [] })}\n`);
    }));
    c.on('close', () => {
      up = false;
      sock.destroy();
      if (!stopped) setTimeout(connect, 100 + Math.floor(Math.random() * 200)).unref();
    });
    c.connect({ sock, username: o.name, privateKey: o.privateKey, readyTimeout: 20_000, keepaliveInterval: 0 });
  };
  connect();
  return { isUp: () => up, attempts: () => attempts, stop: () => { stopped = true; client?.end(); } };
}
