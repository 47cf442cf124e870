// The WebSocket carrier: SSH bytes in binary frames, for networks that only
// let HTTP(S) out. Each upgraded socket is handed to the same ssh2 server as
// TCP connections, so authentication and channels are identical.
//
// Admission (admission.ts) starts at the TCP connection, before TLS and the
// HTTP upgrade: the per-source limits and penalties apply before a byte is
// parsed, the banner deadline covers TLS, the upgrade and the SSH banner
// (so slow headers are cut with it), and the upgraded stream goes through
// the same banner stage, slots and deadline as a TCP connection.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '../../common/platform/log.js';
import type { AgentServer } from './ssh-server.js';
import type { Ticket } from './admission.js';
import { DEFAULT_LIMITS, type AdmissionLimits } from './admission-limits.js';

export interface WsListenerOptions {
  host: string;
  port: number;
  path: string;
  tls: { cert: string; key: string } | null;
  agentServer: AgentServer;
  log: Logger;
  /** Maximum frame size; SSH packets are at most ~35 KiB, so 1 MiB is generous. */
  maxPayload?: number;
  /** The same hub.json "limits" as the SSH listener (deadlines for node's HTTP parser). */
  limits?: AdmissionLimits;
}

export interface WsListener {
  address: AddressInfo;
  endpoint: string;
  close(): Promise<void>;
}

/** TLS wraps the TCP socket in another object; both report the same peer. */
function peerKey(s: { remoteAddress?: string; remotePort?: number }): string {
  return `${s.remoteAddress ?? '?'}|${s.remotePort ?? 0}`;
}

export async function startWsListener(opts: WsListenerOptions): Promise<WsListener> {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const gate = opts.agentServer.admission;
  // Node's own HTTP timeouts back up the gate's deadlines (checked every
  // second instead of the default 30 s); the gate's timers fire first.
  const httpOptions: http.ServerOptions = {
    headersTimeout: limits.bannerTimeoutMs + 1000,
    requestTimeout: limits.handshakeTimeoutMs + 1000,
    connectionsCheckingInterval: 1000,
  };
  const server = opts.tls
    ? https.createServer({ ...httpOptions, cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) })
    : http.createServer(httpOptions);
  const pending = new Map<string, Ticket>();
  server.on('connection', (sock: Socket) => {
    const ticket = gate.open(sock);
    if (!ticket) return;
    const key = peerKey(sock);
    pending.set(key, ticket);
    sock.once('close', () => { if (pending.get(key) === ticket) pending.delete(key); });
  });
  // Not HTTP at all: garbage, which counts toward the source's penalty.
  server.on('clientError', (_err: Error, sock: Socket) => {
    const ticket = pending.get(peerKey(sock));
    if (ticket) gate.cut(ticket, 'garbage');
    else sock.destroy();
  });
  // Anything but the upgrade path gets a plain 404 and the connection closes, so a probe learns nothing.
  server.on('request', (_req, res) => { res.writeHead(404, { connection: 'close' }).end(); });
  const wss = new WebSocketServer({ server, path: opts.path, maxPayload: opts.maxPayload ?? 1024 * 1024, perMessageDeflate: false });
  const scheme = opts.tls ? 'wss' : 'ws';
  let endpoint = '';
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws);
    stream.on('error', (err) => opts.log.debug({ err: err.message }, 'ws stream error'));
    const key = peerKey(req.socket);
    const ticket = pending.get(key);
    pending.delete(key);
    if (!ticket) {
      stream.destroy();
      return;
    }
    // ssh2 reads these for its connection info.
    const s = stream as unknown as Record<string, unknown>;
    s['remoteAddress'] = req.socket.remoteAddress;
    s['remotePort'] = req.socket.remotePort;
    s['remoteFamily'] = req.socket.remoteFamily;
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`;
    opts.agentServer.inject(stream, { carrier: 'ws', endpoint, remoteAddress: remote }, ticket);
  });
  wss.on('error', (err) => opts.log.error({ err: err.message }, 'ws listener error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });
  const address = server.address() as AddressInfo;
  const h = address.address.includes(':') ? `[${address.address}]` : address.address;
  endpoint = `${scheme}://${h}:${address.port}${opts.path}`;
  return {
    address,
    endpoint,
    close: () => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      for (const t of pending.values()) gate.cut(t, 'shutdown');
      wss.close(() => server.close(() => resolve()));
      server.closeAllConnections();
    }),
  };
}
