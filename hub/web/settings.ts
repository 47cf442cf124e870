// hub.json "dashboard" and "metrics": both off by default. A listener on an
// address other than loopback must have a token (tokenFile), and the
// dashboard asks for one by default even on loopback, where any local user
// could otherwise reach it.
import { BentoError } from '../../common/protocol/errors.js';
import { isLoopbackHost } from '../../common/platform/web-origin.js';
import { parseHostPort } from '../fleet/host-port.js';

export interface DashboardSettings {
  /** HOST:PORT; loopback unless you mean it. */
  listen: string;
  /** Token file (relative paths are inside the fleet directory), created with a random token if missing; null = no auth (loopback only). */
  tokenFile: string | null;
  /** Extra Host header values accepted (a reverse proxy's name, e.g. "hub.example:443"); loopback names always pass. */
  allowedHosts: string[];
  /** Serve HTTPS with this certificate; null = plain HTTP. */
  tls: { cert: string; key: string } | null;
}

export interface MetricsSettings {
  /** HOST:PORT of the Prometheus endpoint (GET /metrics). */
  listen: string;
  /** Bearer token file; required when not on loopback. */
  tokenFile: string | null;
}

export const DEFAULT_DASHBOARD_TOKEN_FILE = 'dashboard.token';

export function validateDashboardSettings(raw: unknown, source: string): DashboardSettings | null {
  if (raw === null || raw === undefined) return null;
  const bad = (msg: string): never => { throw new BentoError('CONFIG_INVALID', `${source}: "dashboard": ${msg}`); };
  if (typeof raw !== 'object' || Array.isArray(raw)) return bad('must be null or { "listen": "127.0.0.1:8080", "tokenFile"?, "allowedHosts"?, "tls"? }');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['listen', 'tokenFile', 'allowedHosts', 'tls'].includes(k)) bad(`unknown setting "${k}"`);
  const listen = o['listen'] ?? '127.0.0.1:8080';
  const hp = typeof listen === 'string' ? parseHostPort(listen) : null;
  if (!hp) return bad(`"listen" must be HOST:PORT, got ${JSON.stringify(listen)}`);
  const tokenFile = o['tokenFile'] === undefined ? DEFAULT_DASHBOARD_TOKEN_FILE : o['tokenFile'];
  if (tokenFile !== null && (typeof tokenFile !== 'string' || tokenFile === '')) bad('"tokenFile" must be a path or null');
  if (tokenFile === null && !isLoopbackHost(hp.host)) {
    bad(`listening on ${listen}, which is not loopback, needs authentication: set "tokenFile" (or listen on 127.0.0.1)`);
  }
  const allowedHosts = o['allowedHosts'] ?? [];
  if (!Array.isArray(allowedHosts) || !allowedHosts.every((h) => typeof h === 'string' && /^[A-Za-z0-9.:[\]-]{1,260}$/.test(h))) {
    bad('"allowedHosts" must be an array of Host header values like "hub.example:8443"');
  }
  const tls = o['tls'] ?? null;
  if (tls !== null && (typeof tls !== 'object' || typeof (tls as { cert?: unknown }).cert !== 'string' || typeof (tls as { key?: unknown }).key !== 'string')) {
    bad('"tls" must be null or { "cert": PATH, "key": PATH }');
  }
  return { listen: listen as string, tokenFile: tokenFile as string | null, allowedHosts: allowedHosts as string[], tls: tls as DashboardSettings['tls'] };
}

export function validateMetricsSettings(raw: unknown, source: string): MetricsSettings | null {
  if (raw === null || raw === undefined) return null;
  const bad = (msg: string): never => { throw new BentoError('CONFIG_INVALID', `${source}: "metrics": ${msg}`); };
  if (typeof raw !== 'object' || Array.isArray(raw)) return bad('must be null or { "listen": "127.0.0.1:9180", "tokenFile"? }');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['listen', 'tokenFile'].includes(k)) bad(`unknown setting "${k}"`);
  const listen = o['listen'] ?? '127.0.0.1:9180';
  const hp = typeof listen === 'string' ? parseHostPort(listen) : null;
  if (!hp) return bad(`"listen" must be HOST:PORT, got ${JSON.stringify(listen)}`);
  const tokenFile = o['tokenFile'] ?? null;
  if (tokenFile !== null && (typeof tokenFile !== 'string' || tokenFile === '')) bad('"tokenFile" must be a path or null');
  if (tokenFile === null && !isLoopbackHost(hp.host)) {
    bad(`listening on ${listen}, which is not loopback, needs a bearer token: set "tokenFile" (Prometheus: authorization.credentials_file)`);
  }
  return { listen: listen as string, tokenFile: tokenFile as string | null };
}
