// HTTP responses and requests for the hub dashboard and the agent's local
// page: strict security headers, sending text / JSON / HTML, and bounded
// request bodies (JSON or form). The rest of the small web toolkit, no
// framework and no build step: web-html.ts (templates), web-origin.ts (Host
// and Origin checks), web-sse.ts (server-sent events).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SafeHtml } from './web-html.js';

/** No inline script or style: everything comes from this origin, nothing may frame the page. */
export const STRICT_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', STRICT_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-store');
}

export function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`);
}

export function sendText(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  send(res, status, 'text/plain; charset=utf-8', text.endsWith('\n') ? text : `${text}\n`, extra);
}

export function sendHtml(res: ServerResponse, status: number, page: SafeHtml): void {
  send(res, status, 'text/html; charset=utf-8', page.value);
}

/** A page's own stylesheet and script, and no favicon; false when `pathname` is none of them. */
export function sendStatic(res: ServerResponse, pathname: string, assets: { css: string; js: string }): boolean {
  if (pathname === '/static/style.css') send(res, 200, 'text/css; charset=utf-8', assets.css, { 'Cache-Control': 'max-age=300' });
  else if (pathname === '/static/app.js') send(res, 200, 'text/javascript; charset=utf-8', assets.js, { 'Cache-Control': 'max-age=300' });
  else if (pathname === '/favicon.ico') send(res, 204, 'image/x-icon', '');
  else return false;
  return true;
}

/** A request body up to `limit` bytes; a bigger one is refused (413) before it is buffered. */
export async function readBody(req: IncomingMessage, limit = 16 * 1024): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, 'request body too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A JSON object or an HTML form body, as a flat record of strings. */
export async function readForm(req: IncomingMessage, limit?: number): Promise<Record<string, string>> {
  const text = await readBody(req, limit);
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') {
    let v: unknown;
    try {
      v = JSON.parse(text || '{}');
    } catch {
      throw new HttpError(400, 'body is not JSON');
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'body must be a JSON object');
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v)) if (typeof val === 'string' || typeof val === 'boolean' || typeof val === 'number') out[k] = String(val);
    return out;
  }
  if (type === 'application/x-www-form-urlencoded' || type === '') return Object.fromEntries(new URLSearchParams(text));
  throw new HttpError(415, `unsupported content type ${type}`);
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}
