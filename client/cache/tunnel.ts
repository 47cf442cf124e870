// The hub's binary cache (or any one allow-listed hub service) on a local
// loopback port: each connection accepted on 127.0.0.1:cache.localPort is
// carried as a direct-tcpip channel over the agent's existing SSH connection
// to the hub service named cache.service. The hub maps the name to its own
// target and refuses anything not on its allow-list (hub/services/).
// Use it as `substituters = http://127.0.0.1:PORT` with the hub's signing key
// in trusted-public-keys (docs/cache-secrets-reboot.md).
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Client } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import type { AgentPlugin } from '../agent.js';
import type { CacheSettings } from './settings.js';

export class ServiceTunnel {
  private ssh: Client | null = null;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** Channels opened and refused so far (status, tests). */
  readonly stats = { opened: 0, refused: 0, noConnection: 0 };

  constructor(private readonly settings: CacheSettings, private readonly log: Logger) {}

  plugin(): AgentPlugin {
    return {
      onConnected: (conn) => { this.ssh = conn.ssh; },
      onDisconnected: () => { this.ssh = null; },
    };
  }

  async listen(): Promise<AddressInfo> {
    const server = net.createServer((sock) => this.accept(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.settings.localPort, '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
    server.on('error', (err) => this.log.error({ err: err.message }, 'service tunnel listener error'));
    const addr = server.address() as AddressInfo;
    this.log.info({ port: addr.port, service: this.settings.service }, 'hub service tunnel listening');
    return addr;
  }

  private accept(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    const ssh = this.ssh;
    if (!ssh) {
      this.stats.noConnection++;
      sock.destroy();
      return;
    }
    sock.pause();
    // The destination host is the service NAME; the hub resolves it (port unused).
    ssh.forwardOut(sock.remoteAddress ?? '127.0.0.1', sock.remotePort ?? 0, this.settings.service, 0, (err, ch) => {
      if (err) {
        this.stats.refused++;
        this.log.warn({ service: this.settings.service, err: err.message }, 'hub refused the service channel');
        sock.destroy();
        return;
      }
      this.stats.opened++;
      ch.on('error', () => sock.destroy());
      ch.on('close', () => sock.destroy());
      sock.on('close', () => ch.close());
      sock.pipe(ch).pipe(sock);
      sock.resume();
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Register the tunnel with the agent and start listening; null when `cache` is not configured. */
export async function installServiceTunnel(
  agent: { use(p: AgentPlugin): void },
  settings: CacheSettings | null,
  log: Logger,
): Promise<ServiceTunnel | null> {
  if (!settings) return null;
  const t = new ServiceTunnel(settings, log);
  agent.use(t.plugin());
  // A taken port must not cost the host its tunnel: log it and run without the cache.
  await t.listen().catch((err: Error) => log.error({ port: settings.localPort, err: err.message }, 'cannot listen for the hub service tunnel; running without it'));
  return t;
}
