// Hub services an agent may reach through its own SSH connection (issue 9):
// hub.json `services: { "cache": "127.0.0.1:5000" }`. An agent opens a
// direct-tcpip channel whose destination host is a service NAME; the hub
// connects to that name's target itself. The agent never chooses an address,
// so nothing but the listed targets is reachable; every other destination is
// refused and logged (hub/server/channel-policy.ts).
import net from 'node:net';
import { BentoError } from '../../common/protocol/errors.js';
import type { OutboundWaiter } from '../server/outbound-guard.js';

/** Where a service channel's lines go: the hub's logger, or a rate-limited one (hub/server/channel-policy.ts). */
export interface ServiceLog {
  debug(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

/** Service name -> "HOST:PORT" the hub connects to. */
export type ServiceMap = Readonly<Record<string, string>>;

const SERVICE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export function validateServices(raw: unknown, source = 'hub.json'): ServiceMap {
  const bad = (msg: string): never => { throw new BentoError('CONFIG_INVALID', `${source}: ${msg}`); };
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) return bad('"services" must be an object like { "cache": "127.0.0.1:5000" }');
  const out: Record<string, string> = {};
  for (const [name, target] of Object.entries(raw as Record<string, unknown>)) {
    if (!SERVICE_NAME.test(name)) bad(`"services": name ${JSON.stringify(name)} must be lowercase letters, digits and "-" (e.g. "cache")`);
    if (typeof target !== 'string' || parseTarget(target) === null) bad(`"services.${name}" must be "HOST:PORT", e.g. "127.0.0.1:5000"`);
    out[name] = target as string;
  }
  return out;
}

export function parseTarget(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}

/** The allow-listed target for a direct-tcpip destination, or null (refuse). Only exact service names count. */
export function lookupService(services: ServiceMap, destHost: string): { name: string; host: string; port: number } | null {
  if (!Object.prototype.hasOwnProperty.call(services, destHost)) return null;
  const t = parseTarget(services[destHost]!);
  return t ? { name: destHost, ...t } : null;
}

/**
 * Handle one direct-tcpip open: connect to the named service and splice the
 * channel to it, or refuse. Returns false when the destination is not listed.
 */
export function serveDirectTcpip(
  services: ServiceMap,
  info: { destIP: string; destPort: number },
  accept: () => import('ssh2').ServerChannel,
  reject: () => void,
  log: ServiceLog,
  host: string,
  outbound: OutboundWaiter | null = null,
): boolean {
  const svc = host ? lookupService(services, info.destIP) : null;
  if (!svc) return false;
  const sock = net.connect({ host: svc.host, port: svc.port });
  let opened = false;
  sock.once('connect', () => {
    opened = true;
    const ch = accept();
    log.debug({ host, service: svc.name }, 'service channel opened');
    ch.on('error', () => sock.destroy());
    sock.on('error', () => ch.destroy());
    ch.pipe(sock).pipe(ch);
    // The channel waits only for the SSH window, which the agent sets itself:
    // the service also waits while the agent's connection has not drained
    // (outbound-guard.ts), or a slow link would fill the hub's memory.
    if (outbound) {
      sock.on('data', () => {
        if (!outbound.needsDrain()) return;
        sock.pause();
        void outbound.drained().then(() => { if (!ch.destroyed) sock.resume(); });
      });
    }
    ch.on('close', () => sock.destroy());
    sock.on('close', () => ch.destroy());
  });
  sock.once('error', (err) => {
    if (opened) return;
    log.warn({ host, service: svc.name, err: err.message }, 'service unreachable; channel refused');
    reject();
  });
  return true;
}
