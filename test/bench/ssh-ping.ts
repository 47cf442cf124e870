// One SSH keepalive@openssh.com with a callback on its reply, for the bench
// to count round trips. ssh2 has no public call for it; this does what its
// own keepalive does (client.js sendKA): queue a reply callback in order with
// the other global requests, then send the ping. Bench code only.
import type ssh2 from 'ssh2';

export function sshPing(client: ssh2.Client, onReply: () => void): void {
  const c = client as unknown as { _callbacks: Array<() => void>; _protocol: { ping(): void } };
  c._callbacks.push(onReply);
  c._protocol.ping();
}
