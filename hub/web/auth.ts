// Authentication for the dashboard and the metrics endpoint: one secret
// token in a file (0600) in the fleet directory, generated on first start if
// missing. Browsers send it as HTTP Basic (any user name, the token as the
// password: the browser's own login prompt, no cookie, no session store);
// scripts and Prometheus send `Authorization: Bearer TOKEN`.
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { BentoError } from '../../common/protocol/errors.js';

export interface TokenAuth {
  file: string;
  check(req: IncomingMessage): 'ok' | 'missing' | 'wrong';
  /** How the request authenticated (a Bearer header cannot be a forged cross-site request). */
  viaBearer(req: IncomingMessage): boolean;
}

/** Resolve a tokenFile setting against the fleet directory. */
export function tokenPath(fleetDir: string, file: string): string {
  return path.isAbsolute(file) ? file : path.join(fleetDir, file);
}

/** Read the token, creating it (32 random bytes, base64url, mode 0600) if the file does not exist. */
export async function loadOrCreateToken(file: string, create: boolean): Promise<{ token: string; created: boolean }> {
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token.length < 16) throw new BentoError('CONFIG_INVALID', `${file}: the token must be at least 16 characters`);
    return { token, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create) {
      if (err instanceof BentoError) throw err;
      throw new BentoError('CONFIG_INVALID', `cannot read token file ${file}: ${(err as Error).message}`);
    }
  }
  const token = randomBytes(32).toString('base64url');
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await chmod(file, 0o600);
  return { token: (await readFile(file, 'utf8')).trim(), created: true };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function presented(req: IncomingMessage): { secret: string; bearer: boolean } | null {
  const h = req.headers.authorization;
  if (!h) return null;
  const m = /^(Bearer|Basic)\s+(\S+)$/i.exec(h.trim());
  if (!m) return null;
  if (m[1]!.toLowerCase() === 'bearer') return { secret: m[2]!, bearer: true };
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? null : { secret: decoded.slice(colon + 1), bearer: false };
}

export function tokenAuth(file: string, token: string): TokenAuth {
  const want = digest(token);
  return {
    file,
    check(req) {
      const p = presented(req);
      if (!p) return 'missing';
      return timingSafeEqual(digest(p.secret), want) ? 'ok' : 'wrong';
    },
    viaBearer(req) {
      return presented(req)?.bearer === true;
    },
  };
}
