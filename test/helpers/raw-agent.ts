// A hand-driven agent: a real ssh2 client that authenticates as a host and
// opens the control channel, then lets a test write arbitrary bytes to it.
// Used to feed the hub malformed, oversized and out-of-order input.
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { CONTROL_SUBSYSTEM } from '../../common/protocol/version.js';
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
  const privateKey = await readFile(opts.keyPath);
  const conn = new ssh2.Client();
  let got = '';
  const closed = new Promise<void>((resolve) => conn.on('close', () => resolve()));
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    conn.on('error', reject);
    const open = (): void => { conn.subsys(CONTROL_SUBSYSTEM, (err, ch) => (err ? reject(err) : resolve(ch))); };
    conn.on('ready', () => { if (opts.window === undefined) open(); else void withWindow(conn, opts.window, async () => open()); });
    conn.connect({ host: '127.0.0.1', port: opts.port, username: opts.name, privateKey, readyTimeout: 5000 });
  });
  conn.on('error', () => undefined);
  channel.on('data', (c: Buffer) => { got += c.toString(); });
  return { conn, channel, received: () => got, closed, end: () => conn.end() };
}

export function helloFor(name: string, extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ type: 'hello', protocol: 1, name, agentVersion: 'raw', system: null, generation: null, configHash: null, capabilities: [], ...extra })}\n`;
}
