// The HTTP plumbing under the dashboard and the metrics endpoint: listening
// (http or https), closing, and the guard every request passes first: Host
// header (DNS rebinding), Origin on anything that changes state (CSRF), then
// the token (when set). Errors from a handler become plain responses.
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../common/platform/log.js';
import { HttpError, sendText, setSecurityHeaders } from '../../common/platform/web.js';
import { foreignOrigin, hostAllowed, originAllowed, type OriginPolicy } from '../../common/platform/web-origin.js';
import type { Counter } from '../../common/platform/prometheus.js';
import { LogThrottle } from '../../common/platform/log-throttle.js';
import { printable } from '../../common/protocol/names.js';
import { parseHostPort } from '../fleet/host-port.js';
import type { TokenAuth } from './auth.js';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> | void;

export async function listen(addr: string, tls: { cert: string; key: string } | null, listener: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const hp = parseHostPort(addr)!;
  const server = tls
    ? https.createServer({ cert: await readFile(tls.cert), key: await readFile(tls.key) }, listener)
    : http.createServer(listener);
  server.headersTimeout = 20_000;
  server.requestTimeout = 0; // event streams stay open
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(hp.port, hp.host, () => { server.off('error', rej); res(); });
  });
  const port = (server.address() as AddressInfo).port;
  const host = hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  return { server, url: `${tls ? 'https' : 'http'}://${host}:${port}` };
}

export function closeServer(s: http.Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}

/** Host check, then Origin (foreign Origin, or a POST not from this origin), then token; errors become plain responses. */
export function guarded(log: Logger, auth: TokenAuth | null, refused: Counter, policy: OriginPolicy | null, handle: Handler): http.RequestListener {
  // Refused before the token is checked, so anyone who reaches the port can
  // cause these lines: rate-limited per reason, and the headers in them cut
  // short (3,000 requests with an 8 KB Origin were 21.8 MiB of log).
  const refusals = new LogThrottle(log);
  const cut = (v: string | undefined, max: number): string | undefined => (v === undefined ? undefined : printable(v, max));
  return (req, res) => {
    setSecurityHeaders(res);
    const deny = (status: number, reason: string, text: string, extra: Record<string, string> = {}): void => {
      refused.inc({ reason });
      const remote = req.socket.remoteAddress ?? '?';
      refusals.warn(`web-${reason}`, { source: remote, reason, method: cut(req.method, 16), path: cut(req.url, 200), host: cut(req.headers.host, 100), origin: cut(req.headers.origin, 100), remote }, 'web request refused');
      sendText(res, status, text, extra);
    };
    if (policy && !hostAllowed(req, policy)) return deny(403, 'host', 'refused: this Host name is not one the hub serves (DNS rebinding?)');
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return sendText(res, 405, 'method not allowed', { Allow: 'GET, HEAD, POST' });
    // Cross-site scripts and forms: refused before credentials are even looked at
    // (a browser may attach cached Basic credentials to a cross-site request).
    if (foreignOrigin(req) || (method === 'POST' && !originAllowed(req))) return deny(403, 'origin', 'refused: cross-origin request');
    if (auth) {
      const a = auth.check(req);
      if (a !== 'ok') {
        if (a === 'wrong') refused.inc({ reason: 'auth' });
        return sendText(res, 401, a === 'missing' ? 'authentication required' : 'wrong token', { 'WWW-Authenticate': 'Basic realm="Bento hub", charset="UTF-8"' });
      }
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    } catch {
      return sendText(res, 400, 'bad request');
    }
    Promise.resolve(handle(req, res, url)).catch((err: unknown) => {
      if (err instanceof HttpError) return sendText(res, err.status, err.message);
      log.error({ err: (err as Error).message, path: url.pathname }, 'dashboard request failed');
      sendText(res, 500, 'internal error');
    });
  };
}
