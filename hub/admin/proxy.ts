// `bento-hub proxy HOST PORT`: pipe the admin's socket into a forwarded-tcpip
// channel on the host's existing connection. The hub binds no port; the agent
// decides (its own allow-list) whether to connect the channel to its sshd.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ServerChannel } from 'ssh2';
import type { AdminRequest } from '../../common/protocol/admin.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { RegistryView } from '../fleet/registry.js';
import type { SessionRegistry } from '../server/sessions.js';
import type { Reply } from './server.js';
import { OPEN_FAILURE } from '../../common/protocol/forward.js';

/**
 * The agent's refusal as the admin should read it: the host's own words
 * (its description, common/protocol/forward.ts) under a code that says whose
 * problem it is. Only "prohibited" is FORBIDDEN; a port the host allows but
 * cannot connect to is FORWARD_FAILED. An older agent gives no description.
 */
function openFailure(host: string, port: number, err: Error & { reason?: unknown }): BentoError {
  const said = err.message.replace(/^\(SSH\) Channel open failure:\s*/, '').trim();
  if (err.reason === OPEN_FAILURE.PROHIBITED) return new BentoError('FORBIDDEN', `host "${host}" refuses port ${port}${said ? `: ${said}` : ''}`);
  const why = said || (err.reason === OPEN_FAILURE.CONNECT_FAILED ? 'its agent could not connect to it (nothing listening there?)' : err.message);
  return new BentoError('FORWARD_FAILED', `host "${host}" could not connect to its port ${port}: ${why}`);
}

export interface ProxyDeps {
  registry: RegistryView;
  sessions: SessionRegistry;
  log: Logger;
  /**
   * In a cluster: reaches a host whose tunnel another hub holds
   * (hub/cluster/proxy-relay.ts). The stream it returns half-closes on end()
   * and ends when the host's side ends, like a channel.
   */
  relay?: { connect(host: string, port: number): Promise<Duplex> };
}

/** The forwarded-tcpip channel to HOST:PORT on the host's live session here (null: no session here). */
export async function openForwardChannel(sessions: SessionRegistry, host: string, port: number): Promise<ServerChannel | null> {
  const session = sessions.get(host);
  if (!session) return null;
  const offer = [...session.forwards].find((f) => f.endsWith(`:${port}`));
  if (!offer) throw new BentoError('FORBIDDEN', `host "${host}" does not offer port ${port} (its agent allows: ${[...session.forwards].map((f) => f.split(':').pop()).join(', ') || 'none'})`);
  const sep = offer.lastIndexOf(':');
  return new Promise<ServerChannel>((resolve, reject) => {
    session.conn.forwardOut(offer.slice(0, sep), port, 'bento-hub-admin', 0, (err, ch) => {
      if (err) return reject(openFailure(host, port, err));
      // Piped into a slower admin the channel is paused: a host that ignores the SSH window is cut (inbound-gate.ts).
      session.inbound?.guard(ch, 'proxy');
      resolve(ch);
    });
  });
}

export async function openProxy(hub: ProxyDeps, req: Extract<AdminRequest, { op: 'proxy' }>, reply: Reply, sock: net.Socket): Promise<void> {
  const reg = await hub.registry.refresh();
  if (!Object.prototype.hasOwnProperty.call(reg.hosts, req.host)) throw new BentoError('UNKNOWN_HOST', `no host "${req.host}" in the registry`);
  const channel = await openForwardChannel(hub.sessions, req.host, req.port);
  if (channel) {
    hub.log.info({ host: req.host, port: req.port }, 'admin proxy channel opened');
    // Not sock.pipe(channel): ssh2 closes a server-side channel when its write
    // side ends, which would drop whatever the host still sends. Forward the
    // admin's EOF as an SSH EOF after the data written before it.
    splice(sock, channel, () => channel.write(Buffer.alloc(0), () => channel.eof()), () => channel.close(), reply);
    return;
  }
  if (!hub.relay) throw new BentoError('HOST_OFFLINE', `host "${req.host}" is not connected`);
  const far = await hub.relay.connect(req.host, req.port);
  splice(sock, far, () => far.end(), () => far.destroy(), reply);
}

/**
 * The admin's socket and the host's side (a channel here, or a stream to
 * the hub holding the host), both ways. The admin's EOF half-closes the far
 * side (HALFCLOSE) and the host's answer still comes back; either side closing
 * ends the other (CLOSE).
 */
function splice(sock: net.Socket, far: Duplex, halfClose: () => void, close: () => void, reply: Reply): void {
  reply({ ev: 'ready' });
  // The admin's side may finish sending (stdin EOF) long before the host has
  // answered: keep our half open so the reply still reaches it. Without this,
  // Node ends our side on their FIN and the host's bytes are lost. The socket
  // is still paused here, so no FIN has been processed yet.
  sock.allowHalfOpen = true;
  sock.resume();
  sock.pipe(far, { end: false });
  sock.once('end', halfClose);
  far.pipe(sock);
  far.on('error', () => sock.destroy());
  sock.on('close', close);
  far.on('close', () => sock.end());
}
