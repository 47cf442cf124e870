// The WebSocket carrier: SSH bytes in binary frames, for networks that only
// let HTTP(S) out. Each upgraded socket is handed to the same ssh2 server as
// TCP connections, so authentication and channels are identical.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '../../common/platform/log.js';
import type { AgentServer } from './ssh-server.js';

export interface WsListenerOptions {
  host: string;
  port: number;
  path: string;
  tls: { cert: string; key: string } | null;
  agentServer: AgentServer;
  log: Logger;
  /** Maximum frame size; SSH packets are at most ~35 KiB, so 1 MiB is generous. */
  maxPayload?: number;
}

export interface WsListener {
  address: AddressInfo;
  endpoint: string;
  close(): Promise<void>;
}

export async function startWsListener(opts: WsListenerOptions): Promise<WsListener> {
  const server = opts.tls
    ? https.createServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) })
    : http.createServer();
  // Anything but the upgrade path gets a plain 404, so a probe learns nothing.
  server.on('request', (_req, res) => { res.writeHead(404).end(); });
  const wss = new WebSocketServer({ server, path: opts.path, maxPayload: opts.maxPayload ?? 1024 * 1024, perMessageDeflate: false });
  const scheme = opts.tls ? 'wss' : 'ws';
  let endpoint = '';
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws);
    stream.on('error', (err) => opts.log.debug({ err: err.message }, 'ws stream error'));
    // ssh2 reads these for its connection info.
    const s = stream as unknown as Record<string, unknown>;
    s['remoteAddress'] = req.socket.remoteAddress;
    s['remotePort'] = req.socket.remotePort;
    s['remoteFamily'] = req.socket.remoteFamily;
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`;
    opts.agentServer.inject(stream, { carrier: 'ws', endpoint, remoteAddress: remote });
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
      wss.close(() => server.close(() => resolve()));
    }),
  };
}
