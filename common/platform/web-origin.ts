// The Host and Origin checks that stop DNS rebinding and cross-site requests
// (scripts and forms on another site) against the hub dashboard and the
// agent's local page.
import type { IncomingMessage } from 'node:http';

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
