// A hand-driven agent: a real ssh2 client that authenticates as a host and
// opens the control channel, then lets a test write arbitrary bytes to it.
// Used to feed the hub malformed, oversized and out-of-order input.
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { CONTROL_SUBSYSTEM } from '../../common/protocol/version.js';
import { rawPeer } from './raw-peer.js';
import { withWindow } from './ssh-window.js';

export interface RawAgent {
  conn: ssh2.Client;
  channel: ClientChannel;
  received(): string;
  closed: Promise<void>;
  end(): void;
}

/** WINDOW: the SSH window the control channel offers the hub (default ssh2's 2 MiB; a hostile peer picks its own). */
export async function rawAgent(opts: { port: number; name: string; keyPath: string; window?: number }): Promise<RawAgent> {
  const peer = await rawPeer(opts);
  const conn = peer.client;
  let got = '';
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    const open = (): void => { conn.subsys(CONTROL_SUBSYSTEM, (err, ch) => (err ? reject(err) : resolve(ch))); };
    if (opts.window === undefined) open(); else void withWindow(conn, opts.window, async () => open());
  });
  channel.on('data', (c: Buffer) => { got += c.toString(); });
  return { conn, channel, received: () => got, closed: peer.closed, end: peer.end };
}

export function helloFor(name: string, extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ type: 'hello', protocol: 1, name, agentVersion: 'raw', system: null, generation: null, configHash: null, capabilities: [], ...extra })}\n`;
}
