// Hub endpoints as the agent config states them, parsed once into a checked
// shape: a carrier URL (ssh://, ws://, wss://) plus at most one way through a
// proxy (socks5h://, socks5://, http://, or a ProxyCommand).
import net from 'node:net';

export type Carrier = 'ssh' | 'ws' | 'wss';

export interface ProxySpec {
  kind: 'socks5h' | 'socks5' | 'http';
  host: string;
  port: number;
  user: string | null;
  pass: string | null;
}

export interface Endpoint {
  carrier: Carrier;
  host: string;
  port: number;
  /** Path for ws/wss, "" for ssh. */
  path: string;
  proxy: ProxySpec | null;
  proxyCommand: string | null;
  /** Human label without credentials, e.g. "socks5h://127.0.0.1:9050 -> ssh://x.onion:2222". */
  label: string;
  /** The carrier URL alone (what the hub is asked for). */
  url: string;
  /** wss only: a PEM file of CA certificates to trust instead of the system's. */
  ca: string | null;
  /** One of the host name's addresses to dial (endpoint-order.ts); the name still goes into TLS and the WebSocket request. */
  address?: string;
}

export interface EndpointInput {
  url: string;
  proxy?: string;
  proxyCommand?: string;
  ca?: string;
}

const DEFAULT_PORTS: Record<Carrier, number> = { ssh: 2222, ws: 80, wss: 443 };

export function parseEndpoint(input: EndpointInput): Endpoint {
  if (typeof input.url !== 'string') throw new Error('"url" must be a string');
  let u: URL;
  try {
    u = new URL(input.url);
  } catch {
    throw new Error(`"${input.url}" is not a URL; write e.g. ssh://hub.example:2222 or wss://hub.example/bento`);
  }
  const carrier = u.protocol.slice(0, -1) as Carrier;
  if (!(carrier in DEFAULT_PORTS)) throw new Error(`unsupported scheme "${u.protocol}" in ${input.url}; use ssh://, ws:// or wss://`);
  if (!u.hostname) throw new Error(`no host in ${input.url}`);
  if (u.username || u.password) throw new Error(`${input.url}: credentials do not belong in the hub URL (the agent authenticates with its key)`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = u.port ? Number(u.port) : DEFAULT_PORTS[carrier];
  const path = carrier === 'ssh' ? '' : `${u.pathname === '/' ? '/bento' : u.pathname}${u.search}`;
  if (input.proxy !== undefined && input.proxyCommand !== undefined) throw new Error('set "proxy" or "proxyCommand", not both');
  if (input.proxy !== undefined && typeof input.proxy !== 'string') throw new Error('"proxy" must be a URL string');
  if (input.proxyCommand !== undefined && (typeof input.proxyCommand !== 'string' || input.proxyCommand.trim() === '')) {
    throw new Error('"proxyCommand" must be a command line, e.g. "corkscrew proxy.example 3128 %h %p"');
  }
  const proxy = input.proxy ? parseProxy(input.proxy) : null;
  if (proxy?.kind === 'socks5' && isOnion(host)) {
    throw new Error(`${host} is a Tor onion address: socks5:// would resolve it locally (and fail, or leak the name); use socks5h://`);
  }
  if (isOnion(host) && !proxy && !input.proxyCommand) throw new Error(`${host} is a Tor onion address: it needs "proxy": "socks5h://127.0.0.1:9050" (tor's SocksPort)`);
  const url = `${carrier}://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
  const via = proxy ? `${proxy.kind}://${proxy.host}:${proxy.port} -> ` : input.proxyCommand ? `proxycommand(${input.proxyCommand.split(/\s+/)[0]}) -> ` : '';
  if (input.ca !== undefined && (typeof input.ca !== 'string' || carrier !== 'wss')) throw new Error('"ca" is a PEM file path, and only for wss:// endpoints');
  return { carrier, host, port, path, proxy, proxyCommand: input.proxyCommand ?? null, label: `${via}${url}`, url, ca: input.ca ?? null };
}

export function parseProxy(s: string): ProxySpec {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new Error(`proxy "${s}" is not a URL; write socks5h://HOST:PORT, socks5://HOST:PORT or http://[USER:PASS@]HOST:PORT`);
  }
  const kind = u.protocol.slice(0, -1);
  if (kind !== 'socks5h' && kind !== 'socks5' && kind !== 'http') {
    throw new Error(`unsupported proxy scheme "${u.protocol}"; use socks5h:// (Tor), socks5:// or http:// (HTTP CONNECT)`);
  }
  const port = u.port ? Number(u.port) : kind === 'http' ? 3128 : 1080;
  return {
    kind,
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    user: u.username ? decodeURIComponent(u.username) : null,
    pass: u.password ? decodeURIComponent(u.password) : null,
  };
}

export function isOnion(host: string): boolean {
  return /\.onion\.?$/i.test(host);
}

export function isIp(host: string): boolean {
  return net.isIP(host) !== 0;
}
