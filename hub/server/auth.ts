// Public-key authentication against the registry. A key is accepted only for
// the host name it is registered to, so web1's key can never log in as web2,
// and the user name must be a DNS label before it is used for any lookup.
import ssh2 from 'ssh2';
import type { AuthContext } from 'ssh2';
import { isHostName, printable } from '../../common/protocol/names.js';
import { fingerprintOfBlob } from '../../common/protocol/fingerprint.js';
import type { RegistryView } from '../fleet/registry.js';
import type { LogThrottle } from '../../common/platform/log-throttle.js';
import { verifySignature } from './fast-keys.js';

export type AuthVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Refused attempts (not counting the "none" probe) after which the hub ends
 * the connection, as sshd's MaxAuthTries: ssh2 lets a client try forever on
 * one connection, one log line and one registry lookup each (measured: 5,000
 * "authentication refused" lines in 10 s from one connection).
 */
export const MAX_AUTH_FAILURES = 6;

export interface AuthOptions {
  registry: RegistryView;
  /** Refusals are logged through this, per source (rate-limited). */
  refusals: LogThrottle;
  /** The peer's address, for the log. */
  source: string;
}

/** Parsed-key cache keyed by the registry line, so a storm does not re-parse keys. */
const parsedCache = new Map<string, ssh2.ParsedKey>();

function parsed(line: string): ssh2.ParsedKey | null {
  let k = parsedCache.get(line);
  if (!k) {
    const p = ssh2.utils.parseKey(line);
    if (p instanceof Error || Array.isArray(p)) return null;
    k = p;
    parsedCache.set(line, k);
  }
  return k;
}

/**
 * Accept or reject one attempt; `onSignedIn` runs before the accept, with the
 * proven host name. Resolves false when a real attempt (not the "none" probe
 * every client starts with) was refused: that counts toward the source's
 * penalty (admission.ts).
 */
export async function authenticate(ctx: AuthContext, o: AuthOptions, onSignedIn: (name: string) => void): Promise<boolean> {
  const verdict = await judge(ctx, o.registry);
  if (verdict.ok) {
    if (ctx.method === 'publickey' && ctx.signature) onSignedIn(ctx.username);
    ctx.accept();
    return true;
  }
  // "none" is every client's first probe; logging it would be noise.
  if (ctx.method !== 'none') {
    o.refusals.warn('auth', { source: o.source, remote: o.source, user: printable(ctx.username, 63), method: printable(String(ctx.method), 32), reason: verdict.reason }, 'authentication refused');
  }
  ctx.reject(['publickey']);
  return ctx.method === 'none';
}

async function judge(ctx: AuthContext, registry: RegistryView): Promise<AuthVerdict> {
  if (ctx.method !== 'publickey') return { ok: false, reason: `method ${printable(String(ctx.method), 32)} not allowed` };
  if (!isHostName(ctx.username)) return { ok: false, reason: 'user name is not a valid host name' };
  const reg = await registry.refresh();
  const entry = Object.prototype.hasOwnProperty.call(reg.hosts, ctx.username) ? reg.hosts[ctx.username] : undefined;
  const fp = fingerprintOfBlob(ctx.key.data);
  if (!entry) return { ok: false, reason: `unknown host (key ${fp})` };
  const match = entry.keys.map(parsed).find((k) => k !== null && k.type === ctx.key.algo && k.getPublicSSH().equals(ctx.key.data));
  if (!match) return { ok: false, reason: `key ${fp} is not registered to this host` };
  // Without a signature this is only the "would you accept this key?" query.
  if (!ctx.signature) return { ok: true };
  if (!verifySignature(match, ctx.blob!, ctx.signature, ctx.hashAlgo)) return { ok: false, reason: `bad signature for key ${fp}` };
  return { ok: true };
}
