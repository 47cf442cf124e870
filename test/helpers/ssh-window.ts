// SSH channels opened with the window a hostile peer chooses. ssh2's client
// always offers its own 2 MiB window in CHANNEL_OPEN; a compromised agent can
// offer any (0: the hub may send nothing). This swaps the window of the
// session channels opened while FN runs. ssh2 internals (Client._protocol):
// only for tests scripting an attacker.
import type { Client } from 'ssh2';

type Proto = { session(chan: number, window: number, packet: number): unknown };

export async function withWindow<T>(conn: Client, window: number, fn: () => Promise<T>): Promise<T> {
  const proto = (conn as unknown as { _protocol: Proto })._protocol;
  const original = proto.session;
  proto.session = function (this: Proto, chan: number, _window: number, packet: number) { return original.call(this, chan, window, packet); };
  try {
    return await fn();
  } finally {
    proto.session = original;
  }
}

/** Grant the peer WINDOW more bytes on the channel it knows as REMOTE_ID, without reading any (WINDOW_ADJUST). */
export function grantWindow(conn: Client, remoteId: number, window: number): void {
  (conn as unknown as { _protocol: { channelWindowAdjust(id: number, n: number): void } })._protocol.channelWindowAdjust(remoteId, window);
}
