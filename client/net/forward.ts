// The agent's side of the hub's forwarded-tcpip channels (`bento-hub proxy`,
// `bento-hub ssh`): connect the channel to 127.0.0.1:PORT when this host's
// config allows PORT. A refusal says why in the SSH open-failure message
// (common/protocol/forward.ts), so the admin sees the host's real error
// ("connection refused by 127.0.0.1:8080"), not a bare refusal.
import net from 'node:net';
import type { Client, ClientChannel, TcpConnectionDetails } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import { MAX_OPEN_FAILURE_DESCRIPTION, OPEN_FAILURE } from '../../common/protocol/forward.js';

/** A connect to a loopback port answers at once; this only bounds a port whose packets are dropped. */
const CONNECT_TIMEOUT_MS = 10_000;

export function serveForward(
  client: Client,
  opts: { allowForwardPorts: number[]; log: Logger },
  info: TcpConnectionDetails, accept: () => ClientChannel, reject: () => void,
): void {
  const port = info.destPort;
  // The hub may only reach local ports this host's own config allows.
  if (!opts.allowForwardPorts.includes(port)) {
    opts.log.warn({ port }, 'refused forwarded connection to a port not in allowForwardPorts');
    refuse(client, reject, OPEN_FAILURE.PROHIBITED, `port ${port} is not in this agent's allowForwardPorts`);
    return;
  }
  const local = net.connect({ host: '127.0.0.1', port });
  local.setTimeout(CONNECT_TIMEOUT_MS, () => local.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
  local.once('connect', () => {
    local.setTimeout(0);
    const ch = accept();
    ch.pipe(local).pipe(ch);
    ch.on('error', () => local.destroy());
    local.on('close', () => ch.close());
  });
  local.once('error', (e: NodeJS.ErrnoException) => {
    const why = connectProblem(e, port);
    opts.log.warn({ port, err: e.message }, 'local forward target unreachable');
    refuse(client, reject, OPEN_FAILURE.CONNECT_FAILED, why.slice(0, MAX_OPEN_FAILURE_DESCRIPTION));
  });
}

/** The local error in words an admin reads on the hub. */
export function connectProblem(e: NodeJS.ErrnoException, port: number): string {
  const at = `127.0.0.1:${port}`;
  if (e.code === 'ECONNREFUSED') return `connection refused by ${at} (nothing listens on that port on the host)`;
  if (e.code === 'ETIMEDOUT') return `connecting to ${at} timed out after ${CONNECT_TIMEOUT_MS / 1000}s (a firewall dropping it?)`;
  return `connecting to ${at} failed: ${e.code ?? e.message}`;
}

type ProtocolWithOpenFail = { channelOpenFail?: (recipient: number, reason: number, description: string) => void };

/**
 * Refuse with a reason code and a description. ssh2's reject() takes neither:
 * it always sends "connect failed" with an empty description, through its
 * protocol object's channelOpenFail(recipient, reason, description). That
 * method is swapped for this one synchronous call to pass ours; should ssh2's
 * internals ever differ, the plain reject() still refuses, only more tersely.
 */
function refuse(client: Client, reject: () => void, reason: number, description: string): void {
  const proto = (client as unknown as { _protocol?: ProtocolWithOpenFail })._protocol;
  const original = proto?.channelOpenFail;
  if (!proto || typeof original !== 'function') {
    reject();
    return;
  }
  const own = Object.prototype.hasOwnProperty.call(proto, 'channelOpenFail');
  proto.channelOpenFail = (recipient: number) => original.call(proto, recipient, reason, description);
  try {
    reject();
  } finally {
    if (own) proto.channelOpenFail = original;
    else delete proto.channelOpenFail;
  }
}
