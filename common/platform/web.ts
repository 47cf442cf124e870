// Small web helpers shared by the hub dashboard and the agent's local page:
// auto-escaping HTML templates, strict security headers, server-sent events
// (writer and parser), bounded request bodies, and the Host / Origin checks
// that stop DNS rebinding and cross-site requests. No framework, no build step.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

// ---------------------------------------------------------------- HTML

/** HTML that is already escaped; anything else interpolated into `html` is escaped. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function renderValue(v: unknown): string {
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(renderValue).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(String(v));
}

/** Tagged template: html`<td>${name}</td>` escapes `name`; nested html`` and arrays of it are kept. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += renderValue(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** `<time>` with a machine-readable datetime; the page's script shows it relative ("3 min ago"). */
export function timeTag(iso: string | null | undefined, empty = '–'): SafeHtml {
  if (!iso) return html`${empty}`;
  return html`<time datetime="${iso}" title="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** One stylesheet for both pages: readable, high contrast, light and dark. */
export const BASE_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a; --line: #d0d7de; --head: #f6f8fa;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --run: #0969da; --focus: #0969da; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #30363d; --head: #161b22;
  --ok: #3fb950; --bad: #f85149; --warn: #d29922; --run: #58a6ff; --focus: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--run); }
header.top { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); background: var(--head); }
header.top .brand { font-weight: 700; font-size: 1.1rem; text-decoration: none; color: var(--fg); }
header.top nav a { margin-right: .8rem; }
main { padding: 1rem 1.2rem 3rem; max-width: 110rem; }
h1 { font-size: 1.4rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--head); font-weight: 600; position: sticky; top: 0; }
td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; word-break: break-all; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 1rem; border: 1px solid currentColor; font-size: .85em; white-space: nowrap; }
.s-ok { color: var(--ok); } .s-bad { color: var(--bad); } .s-warn { color: var(--warn); } .s-run { color: var(--run); } .s-off { color: var(--muted); }
button, select { font: inherit; padding: .25rem .7rem; border-radius: .35rem; border: 1px solid var(--line); background: var(--head); color: var(--fg); cursor: pointer; }
button.primary { background: var(--run); border-color: var(--run); color: #fff; font-weight: 600; padding: .5rem 1.2rem; font-size: 1.05rem; }
button:disabled { opacity: .55; cursor: progress; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
form.inline { display: inline-flex; gap: .3rem; margin: 0; }
pre.output { background: #0d1117; color: #e6edf3; padding: .8rem; border-radius: .4rem; max-height: 32rem; overflow: auto; white-space: pre-wrap; word-break: break-word; font-size: .85rem; margin: .4rem 0; }
pre.output .err { color: #ffa198; }
pre.output .note { color: #8b949e; font-style: italic; }
.panel { border: 1px solid var(--line); border-radius: .5rem; padding: .6rem .9rem; margin: .8rem 0; }
.panel h3 { margin: 0 0 .3rem; font-size: 1rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.live { font-size: .85rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

// ---------------------------------------------------------------- headers

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

// ---------------------------------------------------------------- Host / Origin

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return LOOPBACK_NAMES.has(h) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** "Host: example:8080" -> { host: "example", port: 8080 } (port null when absent). */
export function parseHostHeader(value: string | undefined): { host: string; port: number | null } | null {
  if (!value) return null;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return null;
  return { host: m[1]!.toLowerCase(), port: m[2] === undefined ? null : Number(m[2]) };
}

export interface OriginPolicy {
  /** Exact Host header values accepted besides loopback names (e.g. "hub.example:8443"). */
  allowedHosts: string[];
  /** Loopback names (127.0.0.1, localhost, [::1]) are accepted on any port (ssh -L), or only on this one. */
  loopbackPort: number | 'any';
}

/**
 * DNS rebinding: a page from evil.example that resolves to 127.0.0.1 still
 * sends "Host: evil.example". Only loopback names and configured names pass.
 */
export function hostAllowed(req: IncomingMessage, policy: OriginPolicy): boolean {
  const raw = req.headers.host;
  const hh = parseHostHeader(raw);
  if (!hh) return false;
  if (policy.allowedHosts.some((a) => a.toLowerCase() === raw!.trim().toLowerCase())) return true;
  if (!isLoopbackHost(hh.host)) return false;
  return policy.loopbackPort === 'any' || hh.port === policy.loopbackPort;
}

/**
 * Cross-site requests: a state-changing request must come from a page of this
 * very origin. Browsers send Origin on every POST; a request with neither
 * Origin nor Sec-Fetch-Site is not from a browser (curl, the CLI) and cannot be
 * a forged cross-site request.
 */
export function originAllowed(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  const site = req.headers['sec-fetch-site'];
  if (origin === undefined) return site === undefined || site === 'same-origin' || site === 'none';
  if (origin === 'null') return false;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.host.toLowerCase() === String(req.headers.host ?? '').trim().toLowerCase();
}

/**
 * A request carrying an Origin that is not this very origin: a script on
 * another site reading or posting here. (Plain navigations carry no Origin
 * on GET and stay allowed, so a link to the page still works.)
 */
export function foreignOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  if (origin === 'null') return true;
  try {
    return new URL(origin).host.toLowerCase() !== String(req.headers.host ?? '').trim().toLowerCase();
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------- server-sent events

/** One text/event-stream response. Comments keep proxies and idle timers from closing it. */
export class SseStream {
  private readonly keepalive: NodeJS.Timeout;
  closed = false;

  constructor(private readonly res: ServerResponse, keepaliveMs = 15_000) {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    });
    res.write(': bento\nretry: 2000\n\n');
    this.keepalive = setInterval(() => this.comment('keepalive'), keepaliveMs);
    this.keepalive.unref();
    res.once('close', () => this.close());
  }

  send(event: string, data: unknown): void {
    if (this.closed) return;
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    this.res.write(`event: ${event}\n${text.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`);
  }

  comment(text: string): void {
    if (!this.closed) this.res.write(`: ${text}\n\n`);
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.res.once('close', fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    if (!this.res.writableEnded) this.res.end();
  }
}

export interface SseEvent { event: string; data: string }

/** Parse a text/event-stream body (CLI, tests). */
export async function* readSse(body: Readable): AsyncGenerator<SseEvent> {
  let buf = '';
  let event = 'message';
  let data: string[] = [];
  body.setEncoding('utf8');
  for await (const chunk of body as AsyncIterable<string>) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length > 0) yield { event, data: data.join('\n') };
        event = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        continue;
      } else {
        const i = line.indexOf(':');
        const field = i === -1 ? line : line.slice(0, i);
        const value = i === -1 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  }
}
