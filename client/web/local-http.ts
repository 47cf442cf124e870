// The local page's HTTP transport: a server on loopback TCP and one on a unix
// socket (for `bento-client upgrade`), and the checks every request passes
// before it reaches the routes: a foreign Host (DNS rebinding) or Origin
// (another site's script or form) is refused. Errors from a route become
// plain responses.
import http from 'node:http';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../common/platform/log.js';
import type { Counter } from '../../common/platform/prometheus.js';
import { HttpError, sendJson, sendText, setSecurityHeaders } from '../../common/platform/web.js';
import { foreignOrigin, hostAllowed, originAllowed } from '../../common/platform/web-origin.js';

export type Route = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void>;

export interface GuardOptions {
  log: Logger;
  /** Counts refusals by reason (host, origin). */
  refused: Counter;
  /** The port the TCP server listens on (-1 before it does): the only one a loopback Host may name. */
  tcpPort(): number;
}

/** An HTTP server for one kind of listener, its requests guarded, then routed. */
export function localServer(kind: 'tcp' | 'unix', o: GuardOptions, route: Route): http.Server {
  const server = http.createServer(guarded(kind, o, route));
  server.headersTimeout = 10_000;
  server.requestTimeout = 0;
  return server;
}

function guarded(kind: 'tcp' | 'unix', o: GuardOptions, route: Route): http.RequestListener {
  return (req, res) => {
    setSecurityHeaders(res);
    const refuse = (reason: string, text: string): void => {
      o.refused.inc({ reason });
      o.log.warn({ reason, method: req.method, path: req.url?.slice(0, 200), host: req.headers.host, origin: req.headers.origin }, 'local page request refused');
      sendText(res, 403, text);
    };
    // DNS rebinding: only 127.0.0.1 / localhost / [::1] on our own port. The
    // unix socket is not reachable from a browser; its file mode decides.
    if (kind === 'tcp' && !hostAllowed(req, { allowedHosts: [], loopbackPort: o.tcpPort() })) return refuse('host', 'refused: foreign Host header (this page answers only to 127.0.0.1, localhost and [::1])');
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return sendText(res, 405, 'method not allowed', { Allow: 'GET, HEAD, POST' });
    if (foreignOrigin(req) || (method === 'POST' && !originAllowed(req))) return refuse('origin', 'refused: cross-origin request');
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://local.invalid');
    } catch {
      return sendText(res, 400, 'bad request');
    }
    route(req, res, url).catch((err: unknown) => {
      if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
      o.log.error({ err: (err as Error).message }, 'local page request failed');
      sendText(res, 500, 'internal error');
    });
  };
}

/** Listen on host:port; returns the port (the one the system picked for port 0). */
export async function listenTcp(server: http.Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return (server.address() as AddressInfo).port;
}

/** Listen on a unix socket file, mode 0600, or 0660 for `group`. */
export async function listenSocket(server: http.Server, file: string, group: string | null): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  // A socket file left by a dead agent is removed; a live one (another agent) is not touched.
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(file);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${file} is in use by another process`);
  await unlink(file).catch(() => undefined);
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => { server.off('error', reject); resolve(); });
    });
  } finally {
    process.umask(old);
  }
  if (group) {
    const gid = Number(execFileSync('getent', ['group', group]).toString().split(':')[2]);
    await chown(file, process.getuid?.() ?? 0, gid);
    await chmod(file, 0o660);
  } else {
    await chmod(file, 0o600);
  }
}

export function closeServer(s: http.Server): Promise<void> {
  return new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections(); });
}
