// The cluster's connection options: one object, the shape hub.json's
// `cluster` section maps onto. parseClusterOptions() is the edge: anything
// read from a file goes through it and comes out complete (defaults filled)
// or as a CONFIG_INVALID error that names the field.
import { isIP } from 'node:net';
import { BentoError } from '../../common/protocol/errors.js';
import { isHostName } from '../../common/protocol/names.js';
import { isValidPrefix } from './names.js';

export interface ClusterTls {
  /** CA bundle that signed the NATS servers' certificates (PEM file). */
  caFile?: string;
  /** Client certificate and key (PEM files), for servers that verify clients. Both or neither. */
  certFile?: string;
  keyFile?: string;
}

export interface ClusterOptions {
  /** NATS servers: nats://host:port, tls://host:port or host:port. List several: the client fails over between them. */
  servers: string[];
  /** This hub's name (a DNS label): the NATS connection name and the origin of the events it publishes. */
  hubName: string;
  /** At most one way to authenticate: user + password, token, an nkey seed file, or a creds file (JWT + seed). */
  user?: string;
  password?: string;
  /** The password, read from this file at start (keeps it out of hub.json and the Nix store). */
  passwordFile?: string;
  token?: string;
  /** The token, read from this file at start. */
  tokenFile?: string;
  nkeySeedFile?: string;
  credsFile?: string;
  tls?: ClusterTls;
  /** Every bucket, stream and subject name starts with this, so several fleets can share one NATS. Default "bento". */
  prefix?: string;
  /** Copies JetStream keeps of every bucket and stream. Default 3 (a 3-node cluster survives one node). */
  replicas?: number;
  /** How long one JetStream request may take before it is retried. Default 2000 ms. */
  requestTimeoutMs?: number;
  /**
   * A write not acknowledged within this rejects with STATE_WRITE_FAILED (the
   * store keeps retrying it). Default 10,000 ms: one leader election after a
   * server dies takes about 5 s.
   */
  writeTimeoutMs?: number;
  /** Give up connecting at start after this. Default 10,000 ms. */
  connectTimeoutMs?: number;
  /** Size limit of the job output stream; the oldest output goes first. Default 1 GiB. */
  outputMaxBytes?: number;
  /**
   * How often this hub writes its heartbeat (hub/cluster/liveness.ts). It
   * vouches for its hosts only while a beat came back within 3 periods, and
   * another hub counts as dead after 6 periods without one. Default 2000 ms.
   */
  livenessMs?: number;
  /** How long a hub waits for the hub holding a host to answer a routed trigger. Default 5000 ms. */
  routeTimeoutMs?: number;
  /** How agents reach this hub (e.g. "ssh://hub1.example.org:2222"): every hub's welcome lists the live hubs' URLs. */
  agentUrl?: string;
}

export type ResolvedClusterOptions = Required<Pick<ClusterOptions,
  'servers' | 'hubName' | 'prefix' | 'replicas' | 'requestTimeoutMs' | 'writeTimeoutMs' | 'connectTimeoutMs' | 'outputMaxBytes' | 'livenessMs' | 'routeTimeoutMs'>>
  & Pick<ClusterOptions, 'agentUrl' | 'user' | 'password' | 'passwordFile' | 'token' | 'tokenFile' | 'nkeySeedFile' | 'credsFile' | 'tls'>;

export const CLUSTER_DEFAULTS = {
  prefix: 'bento',
  replicas: 3,
  requestTimeoutMs: 2000,
  writeTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  outputMaxBytes: 1024 ** 3,
  livenessMs: 2000,
  routeTimeoutMs: 5000,
} as const;

const KNOWN = new Set(['servers', 'hubName', 'user', 'password', 'passwordFile', 'token', 'tokenFile', 'nkeySeedFile', 'credsFile', 'tls',
  'prefix', 'replicas', 'requestTimeoutMs', 'writeTimeoutMs', 'connectTimeoutMs', 'outputMaxBytes', 'livenessMs', 'routeTimeoutMs', 'agentUrl']);

function bad(field: string, problem: string): BentoError {
  return new BentoError('CONFIG_INVALID', `cluster.${field}: ${problem}`);
}

function str(o: Record<string, unknown>, field: string, max = 4096): string | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw bad(field, `must be a non-empty string of at most ${max} characters`);
  return v;
}

function int(o: Record<string, unknown>, field: string, min: number, max: number, dflt: number): number {
  const v = o[field];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw bad(field, `must be an integer from ${min} to ${max}`);
  return v;
}

function serverUrl(s: unknown, i: number): string {
  if (typeof s !== 'string' || s.length === 0 || s.length > 512) throw bad(`servers[${i}]`, 'must be a URL such as nats://10.0.0.1:4222');
  const withScheme = /^[a-z]+:\/\//.test(s) ? s : `nats://${s}`;
  let u: URL;
  try { u = new URL(withScheme); } catch { throw bad(`servers[${i}]`, `${JSON.stringify(s)} is not a URL`); }
  if (u.protocol !== 'nats:' && u.protocol !== 'tls:') throw bad(`servers[${i}]`, `scheme must be nats:// or tls://, not ${u.protocol}//`);
  if (!u.hostname) throw bad(`servers[${i}]`, 'has no host');
  if (u.username || u.password) throw bad(`servers[${i}]`, 'must not carry credentials; use cluster.user/password or cluster.token');
  return s;
}

function parseTls(v: unknown): ClusterTls | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('tls', 'must be an object with caFile, certFile, keyFile');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['caFile', 'certFile', 'keyFile'].includes(k)) throw bad(`tls.${k}`, 'unknown field');
  const t: ClusterTls = {};
  for (const k of ['caFile', 'certFile', 'keyFile'] as const) {
    const f = o[k];
    if (f === undefined) continue;
    if (typeof f !== 'string' || f.length === 0) throw bad(`tls.${k}`, 'must be a file path');
    t[k] = f;
  }
  if ((t.certFile === undefined) !== (t.keyFile === undefined)) throw bad('tls', 'certFile and keyFile go together');
  return t;
}

/** Validate a `cluster` section; throws BentoError CONFIG_INVALID naming the field. */
export function parseClusterOptions(raw: unknown): ResolvedClusterOptions {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BentoError('CONFIG_INVALID', 'cluster: must be an object');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw bad(k, 'unknown field');
  if (!Array.isArray(o['servers']) || o['servers'].length === 0 || o['servers'].length > 64) throw bad('servers', 'must list 1 to 64 NATS server URLs');
  const servers = o['servers'].map(serverUrl);
  if (o['tls'] !== undefined || servers.some((x) => x.startsWith('tls://'))) {
    // The client gives the TLS handshake no server name for an IP address, so
    // it checks the certificate against "localhost" and fails: name servers
    // by the DNS name their certificates carry.
    const i = servers.findIndex((x) => isIP(new URL(/^[a-z]+:\/\//.test(x) ? x : `nats://${x}`).hostname.replace(/^\[|\]$/g, '')) !== 0);
    if (i >= 0) throw bad(`servers[${i}]`, 'with TLS, give the server\'s DNS name (the name in its certificate), not an IP address');
  }
  const hubName = o['hubName'];
  if (!isHostName(hubName)) throw bad('hubName', 'must be a DNS label (a-z, 0-9, inner hyphens)');
  const user = str(o, 'user', 256);
  const password = str(o, 'password');
  const passwordFile = str(o, 'passwordFile');
  const token = str(o, 'token');
  const tokenFile = str(o, 'tokenFile');
  const nkeySeedFile = str(o, 'nkeySeedFile');
  const credsFile = str(o, 'credsFile');
  if (password !== undefined && passwordFile !== undefined) throw bad('passwordFile', 'give password or passwordFile, not both');
  if ((user === undefined) !== (password === undefined && passwordFile === undefined)) throw bad(user === undefined ? 'password' : 'user', 'user and password (or passwordFile) go together');
  if (token !== undefined && tokenFile !== undefined) throw bad('tokenFile', 'give token or tokenFile, not both');
  const ways = [user, token ?? tokenFile, nkeySeedFile, credsFile].filter((x) => x !== undefined).length;
  if (ways > 1) throw bad('user', 'give one of user/password, token, nkeySeedFile, credsFile');
  const agentUrl = str(o, 'agentUrl', 512);
  if (agentUrl !== undefined && !/^(ssh|wss?):\/\/[^\s]+$/.test(agentUrl)) throw bad('agentUrl', 'must be the URL agents use for this hub: ssh://HOST:PORT, ws:// or wss://');
  const prefix = str(o, 'prefix', 32) ?? CLUSTER_DEFAULTS.prefix;
  if (!isValidPrefix(prefix)) throw bad('prefix', 'must be letters, digits, "-" or "_" (at most 32, starting with a letter or digit)');
  const requestTimeoutMs = int(o, 'requestTimeoutMs', 100, 60_000, CLUSTER_DEFAULTS.requestTimeoutMs);
  const writeTimeoutMs = int(o, 'writeTimeoutMs', requestTimeoutMs, 600_000, Math.max(CLUSTER_DEFAULTS.writeTimeoutMs, requestTimeoutMs));
  return {
    servers, hubName, prefix, requestTimeoutMs, writeTimeoutMs,
    replicas: int(o, 'replicas', 1, 5, CLUSTER_DEFAULTS.replicas),
    connectTimeoutMs: int(o, 'connectTimeoutMs', 100, 600_000, CLUSTER_DEFAULTS.connectTimeoutMs),
    outputMaxBytes: int(o, 'outputMaxBytes', 1024 ** 2, 2 ** 50, CLUSTER_DEFAULTS.outputMaxBytes),
    livenessMs: int(o, 'livenessMs', 100, 60_000, CLUSTER_DEFAULTS.livenessMs),
    routeTimeoutMs: int(o, 'routeTimeoutMs', 100, 120_000, CLUSTER_DEFAULTS.routeTimeoutMs),
    ...(user !== undefined ? { user, ...(password !== undefined ? { password } : { passwordFile }) } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(tokenFile !== undefined ? { tokenFile } : {}),
    ...(agentUrl !== undefined ? { agentUrl } : {}),
    ...(nkeySeedFile !== undefined ? { nkeySeedFile } : {}),
    ...(credsFile !== undefined ? { credsFile } : {}),
    ...(o['tls'] !== undefined ? { tls: parseTls(o['tls']) } : {}),
  };
}
