// HOST:PORT addresses of the hub's listeners (agents, WebSocket, dashboard,
// metrics): parsing, and what a listener that cannot bind its address says.
// Its own module because both hub.json (hub-config.ts) and the web settings
// (web/settings.ts, which hub-config validates) need it.
import { BentoError } from '../../common/protocol/errors.js';

/** "127.0.0.1:2222", "[::1]:2222", "hub.example:2222" -> { host, port }. */
export function parseHostPort(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 0 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}

export function isHostPort(s: unknown): s is string {
  return typeof s === 'string' && parseHostPort(s) !== null;
}

/** A listen address from hub.json or the command line; CONFIG_INVALID when it is not HOST:PORT. */
export function listenAddress(setting: string, addr: string): { host: string; port: number } {
  const hp = parseHostPort(addr);
  if (!hp) throw new BentoError('CONFIG_INVALID', `"${setting}" must be HOST:PORT, got ${JSON.stringify(addr)}`);
  return hp;
}

/**
 * Bind with `start`; an address this machine cannot listen on (not one of its
 * addresses, a name that does not resolve, a port not allowed) is the
 * configuration's fault: CONFIG_INVALID (exit 2) naming the setting, not an
 * internal error. A port another program holds is ADDRESS_IN_USE (exit 6).
 */
export async function bindListener<T>(setting: string, addr: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const why = BIND_ERRORS[code] ?? (code.startsWith('EAI_') ? 'the name does not resolve' : null);
    if (why === null) throw err;
    // In use is not a mistake in the setting (another program holds the port): its own code, exit 6.
    if (code === 'EADDRINUSE') throw new BentoError('ADDRESS_IN_USE', `${addr} is already in use by another program (another hub?): stop it, or choose another port for "${setting}"`, { cause: err });
    throw new BentoError('CONFIG_INVALID', `cannot listen on ${addr} ("${setting}"): ${why} (${code})`, { cause: err });
  }
}

const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: 'another process already listens there',
  EADDRNOTAVAIL: 'not an address of this machine',
  EACCES: 'not allowed (a port below 1024 needs privileges)',
  ENOTFOUND: 'the name does not resolve',
  EINVAL: 'not a usable address',
};
