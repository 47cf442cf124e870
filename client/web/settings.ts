// The agent config's "localPage": the host-local "upgrade now" page on
// loopback and its unix-socket twin for `bento-client upgrade`. On by
// default, like upstream's port 51337, but never on another interface.
import { isLoopbackHost } from '../../common/platform/web-origin.js';

export interface LocalPageSettings {
  /** 127.0.0.1:PORT (or [::1]:PORT, localhost:PORT); null = no TCP page. */
  listen: string | null;
  /** Unix socket for `bento-client upgrade`; null = none. */
  socket: string | null;
  /** Group allowed on the socket (mode 0660); null = owner only (0600). */
  socketGroup: string | null;
  /** Serve Prometheus metrics of this agent at /metrics on the page. */
  metrics: boolean;
}

export const DEFAULT_LOCAL_PAGE: LocalPageSettings = {
  listen: '127.0.0.1:51337',
  socket: '/run/bento-client/local.sock',
  socketGroup: null,
  metrics: true,
};

export const DEFAULT_LOCAL_SOCKET = DEFAULT_LOCAL_PAGE.socket!;

/** "127.0.0.1:51337" -> { host, port } when it is a loopback address, else null. */
export function parseLoopbackListen(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const host = (m[1] ?? m[2])!;
  const port = Number(m[3]);
  if (port > 65535 || !isLoopbackHost(host)) return null;
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}

export function parseLocalPageSettings(raw: unknown, bad: (msg: string) => never): LocalPageSettings | null {
  if (raw === null) return null;
  if (raw === undefined) return { ...DEFAULT_LOCAL_PAGE };
  if (typeof raw !== 'object' || Array.isArray(raw)) return bad('"localPage" must be null or { "listen", "socket", "socketGroup"?, "metrics"? }');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['listen', 'socket', 'socketGroup', 'metrics'].includes(k)) bad(`"localPage": unknown setting "${k}"`);
  const listen = o['listen'] === undefined ? DEFAULT_LOCAL_PAGE.listen : o['listen'];
  if (listen !== null && (typeof listen !== 'string' || !parseLoopbackListen(listen))) {
    bad(`"localPage.listen" must be a loopback address like "127.0.0.1:51337" (the page is for this host only), or null`);
  }
  const socket = o['socket'] === undefined ? DEFAULT_LOCAL_PAGE.socket : o['socket'];
  if (socket !== null && (typeof socket !== 'string' || !socket.startsWith('/'))) bad('"localPage.socket" must be an absolute path or null');
  const group = o['socketGroup'] ?? null;
  if (group !== null && (typeof group !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(group))) bad('"localPage.socketGroup" must be a group name or null');
  const metrics = o['metrics'] ?? true;
  if (typeof metrics !== 'boolean') bad('"localPage.metrics" must be true or false');
  return { listen: listen as string | null, socket: socket as string | null, socketGroup: group as string | null, metrics: metrics as boolean };
}
