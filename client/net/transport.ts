// Open a byte stream to the hub for one endpoint: TCP or WebSocket, directly
// or through a proxy. Everything above this is plain SSH, so auth, channels
// and keepalive behave the same on every path.
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { WebSocket, createWebSocketStream } from 'ws';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { Endpoint } from './endpoint.js';
import { viaHttpConnect, viaProxyCommand, viaSocks } from './proxies.js';

export interface OpenOptions {
  timeoutMs: number;
  log: Logger;
}

/** The raw stream to host:port, through the endpoint's proxy if any. */
async function rawStream(ep: Endpoint, opts: OpenOptions): Promise<Duplex> {
  const target = { host: ep.host, port: ep.port };
  if (ep.proxyCommand) return viaProxyCommand(ep.proxyCommand, target, opts.log);
  if (ep.proxy?.kind === 'http') return viaHttpConnect(ep.proxy, target, opts.timeoutMs);
  if (ep.proxy) return viaSocks(ep.proxy, target, opts.timeoutMs);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: ep.address ?? ep.host, port: ep.port });
    const timer = setTimeout(() => { sock.destroy(); reject(new BentoError('CONNECT_FAILED', `connect to ${ep.host}:${ep.port} timed out after ${opts.timeoutMs} ms`)); }, opts.timeoutMs);
    sock.once('connect', () => { clearTimeout(timer); sock.off('error', onErr); resolve(sock); });
    const onErr = (err: Error): void => { clearTimeout(timer); reject(new BentoError('CONNECT_FAILED', `connect to ${ep.host}:${ep.port}: ${err.message}`)); };
    sock.once('error', onErr);
  });
}

export async function openTransport(ep: Endpoint, opts: OpenOptions): Promise<Duplex> {
  const raw = await rawStream(ep, opts);
  if (ep.carrier === 'ssh') {
    if (raw instanceof net.Socket) raw.setNoDelay(true);
    return raw;
  }
  return openWebSocket(ep, raw, opts);
}

function openWebSocket(ep: Endpoint, raw: Duplex, opts: OpenOptions): Promise<Duplex> {
  // ws expects socket methods that a ProxyCommand's stdio Duplex lacks.
  const sockLike = raw as Duplex & Partial<Pick<net.Socket, 'setNoDelay' | 'setTimeout' | 'setKeepAlive'>>;
  sockLike.setNoDelay ??= (() => sockLike) as never;
  sockLike.setTimeout ??= (() => sockLike) as never;
  sockLike.setKeepAlive ??= (() => sockLike) as never;
  // The SSH host key pin is what authenticates the hub; TLS still verifies
  // (system CAs, or the endpoint's own "ca") so a proxy sees a normal HTTPS peer.
  const stream: Duplex = ep.carrier === 'wss'
    ? tls.connect({ socket: raw as net.Socket, servername: net.isIP(ep.host) ? undefined : ep.host, ...(ep.ca ? { ca: readFileSync(ep.ca) } : {}) })
    : raw;
  // Hand the already-open stream to the HTTP client instead of letting it dial.
  const agent = ep.carrier === 'wss' ? new https.Agent() : new http.Agent();
  (agent as unknown as { createConnection: () => Duplex }).createConnection = () => stream;
  const hostPart = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  const url = `${ep.carrier}://${hostPart}:${ep.port}${ep.path}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { agent, handshakeTimeout: opts.timeoutMs, perMessageDeflate: false, maxPayload: 1024 * 1024 });
    ws.once('open', () => {
      ws.off('error', onErr);
      const duplex = createWebSocketStream(ws);
      duplex.on('error', (err) => opts.log.debug({ err: err.message }, 'websocket stream error'));
      resolve(duplex);
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new BentoError('CONNECT_FAILED', `${url}: WebSocket upgrade answered ${res.statusCode} ${res.statusMessage ?? ''} (check the path)`));
      ws.terminate();
    });
    const onErr = (err: Error): void => { reject(new BentoError('CONNECT_FAILED', `${url}: ${err.message}`)); raw.destroy(); };
    ws.once('error', onErr);
  });
}
