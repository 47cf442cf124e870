// What an agent may open inside its SSH connection: the control subsystem,
// and (through the hub's own handlers) sftp and the reverse forward of its
// sshd. Everything else (shell, exec, pty, X11, agent forwarding, direct-tcpip,
// streamlocal) is refused and logged once per attempt. The one exception to
// direct-tcpip: a destination that is a service NAME in hub.json "services"
// (hub/services/allow-list.ts), e.g. the binary cache.
import type { Connection, Session } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import { serveDirectTcpip, type ServiceMap } from '../services/allow-list.js';

const REFUSED_SESSION_REQUESTS = ['pty', 'shell', 'exec', 'x11', 'auth-agent', 'env', 'signal', 'window-change', 'sftp'] as const;

export function refuseSessionExtras(session: Session, log: Logger, host: string, allowed: readonly string[] = []): void {
  for (const ev of REFUSED_SESSION_REQUESTS) {
    if (allowed.includes(ev)) continue;
    // Every one of these events is (accept?, reject?, info?); reject is absent when the client wants no reply.
    (session as unknown as NodeJS.EventEmitter).on(ev, (_accept: unknown, reject?: () => void) => {
      log.warn({ host, request: ev }, 'refused session request');
      if (typeof reject === 'function') reject();
    });
  }
}

export function refuseConnectionExtras(conn: Connection, log: Logger, host: () => string, services: ServiceMap = {}): void {
  conn.on('tcpip', (accept, reject, info) => {
    // Only a hub service named in hub.json "services" (hub/services/allow-list.ts); the agent names it, never an address.
    if (serveDirectTcpip(services, info, accept, reject, log, host() === '(unauthenticated)' ? '' : host())) return;
    log.warn({ host: host(), dest: `${info.destIP}:${info.destPort}` }, 'refused direct-tcpip channel');
    reject();
  });
  conn.on('openssh.streamlocal', (_accept, reject) => {
    log.warn({ host: host() }, 'refused streamlocal channel');
    reject();
  });
}
