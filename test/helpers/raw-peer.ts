// A compromised host as a raw ssh2 client (its valid key) that does what the
// agent never does: many channels, many reverse forwards, no hello, packets
// past the SSH window. Used by test/integration/hostile-conn*.test.ts.
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';

export interface RawPeer {
  client: ssh2.Client;
  /** Resolves when the hub closes the connection (or it fails). */
  closed: Promise<void>;
  isClosed(): boolean;
  end(): void;
}

export async function rawPeer(o: { port: number; name: string; keyPath: string; localAddress?: string }): Promise<RawPeer> {
  const privateKey = await readFile(o.keyPath);
  const client = new ssh2.Client();
  let isClosed = false;
  const closed = new Promise<void>((resolve) => client.on('close', () => { isClosed = true; resolve(); }));
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    const sock = net.connect({ host: '127.0.0.1', port: o.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    sock.on('error', () => undefined);
    client.connect({ sock, username: o.name, privateKey, readyTimeout: 10_000, keepaliveInterval: 0 });
  });
  client.on('error', () => undefined);
  return { client, closed, isClosed: () => isClosed, end: () => client.end() };
}

type Internals = {
  _chanMgr: { add(cb: unknown): number };
  _protocol: { session(id: number, window: number, packet: number): void };
};

/** Open one bare session channel (no request on it): true if the hub accepted it, false if refused; bounded by `timeoutMs`. */
export function openBareSession(client: ssh2.Client, timeoutMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    const c = client as unknown as Internals;
    const cb = (err: Error | undefined): void => { clearTimeout(t); resolve(!err); };
    (cb as unknown as { type: string }).type = 'session';
    const id = c._chanMgr.add(cb);
    if (id === -1) { clearTimeout(t); resolve(false); return; }
    c._protocol.session(id, 2 * 1024 * 1024, 32 * 1024);
  });
}

/** Open a direct-tcpip channel to `dest` (a hub service name); null when refused or after `timeoutMs`. */
export function openDirect(client: ssh2.Client, dest: string, timeoutMs = 5000): Promise<ClientChannel | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), timeoutMs);
    client.forwardOut('127.0.0.1', 1, dest, 1, (err, ch) => { clearTimeout(t); resolve(err ? null : ch); });
  });
}

/**
 * Send `total` bytes on `ch` in packets of `packet` bytes as if the hub's
 * window were endless (ssh2 drops a packet only at exactly 0 window, so once
 * overshot it takes all). Stops at `deadline` or when `stop()` says so; the
 * bytes written.
 */
export async function overrun(ch: ClientChannel, o: { total: number; packet: number; deadline: number; stop: () => boolean }): Promise<number> {
  const out = ch as unknown as { outgoing: { window: number } };
  const chunk = Buffer.alloc(o.packet, 0x61);
  let sent = 0;
  while (sent < o.total && Date.now() < o.deadline && !o.stop()) {
    // 1 MiB per turn of the event loop, so the client's own socket drains between turns.
    for (let i = 0; i < Math.ceil((1024 * 1024) / o.packet) && sent < o.total; i++) {
      out.outgoing.window = 1 << 30;
      ch.write(chunk);
      sent += chunk.length;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return sent;
}
