// The control channel of one agent: framing, validation and the hello
// handshake. Bad input (not JSON, too long, unknown type, wrong field types,
// a message before hello, a hello for another name) ends this agent's
// connection with a logged reason and an `error` message; nothing thrown
// here can reach the hub's event loop.
import type { ServerChannel } from 'ssh2';
import { LineDecoder } from '../../common/protocol/codec.js';
import { HUB_CAPABILITIES, parseMessage, type AgentMessage, type Hello, type Welcome } from '../../common/protocol/messages.js';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import { PROTOCOL_VERSION, BENTO_VERSION } from '../../common/protocol/version.js';
import type { Logger } from '../../common/platform/log.js';
import type { LiveSession } from './live-session.js';

export interface ControlHooks {
  /** A valid hello arrived: the session is now live. */
  onHello(session: LiveSession, hello: Hello): void;
  /** Any later message, already validated. */
  onMessage(session: LiveSession, msg: AgentMessage): void;
  heartbeatMs(): number;
  /** What else the welcome says (a cluster: how agents reach the live hubs). */
  welcomeExtras?(): Pick<Welcome, 'hubs'>;
}

export function attachControl(session: LiveSession, channel: ServerChannel, hooks: ControlHooks, log: Logger): void {
  session.channel = channel;
  const fail = (err: BentoError): void => {
    decoder.stop();
    log.warn({ host: session.name, code: err.code, reason: err.message }, 'closing agent connection: bad control input');
    session.close(err.code, err.message);
  };
  const decoder = new LineDecoder((value) => {
    try {
      handle(parseMessage(value, 'agent'));
    } catch (err) {
      fail(asBentoError(err));
    }
  }, fail);

  // session.lastInbound is kept by the transport's byte feed (ssh-server.ts), not per message.
  const handle = (msg: AgentMessage): void => {
    if (!session.hello) {
      if (msg.type !== 'hello') throw new BentoError('PROTOCOL_STATE', `expected hello, got ${msg.type}`);
      if (msg.name !== session.name) throw new BentoError('PROTOCOL_STATE', `hello names "${msg.name}" but this key belongs to "${session.name}"`);
      if (msg.protocol !== PROTOCOL_VERSION) {
        throw new BentoError('PROTOCOL_VERSION', `agent speaks protocol ${msg.protocol}; this hub speaks ${PROTOCOL_VERSION}`);
      }
      session.hello = msg;
      session.send({ type: 'welcome', protocol: PROTOCOL_VERSION, hubVersion: BENTO_VERSION, heartbeatMs: hooks.heartbeatMs(), keepalive: 'ssh', capabilities: [...HUB_CAPABILITIES], ...hooks.welcomeExtras?.() });
      hooks.onHello(session, msg);
      return;
    }
    if (msg.type === 'hello') throw new BentoError('PROTOCOL_STATE', 'second hello on one connection');
    if (msg.type === 'heartbeat') {
      session.send({ type: 'heartbeat', seq: msg.seq });
      return;
    }
    hooks.onMessage(session, msg);
  };

  channel.on('data', (chunk: Buffer) => decoder.push(chunk));
  channel.on('error', (err: Error) => log.debug({ host: session.name, err: err.message }, 'control channel error'));
  channel.on('close', () => {
    decoder.stop();
    // Without its control channel an agent is unreachable: drop the connection
    // so it reconnects rather than lingering as a ghost in `list`.
    if (!session.closed) {
      session.closed = true;
      session.conn.end();
    }
  });
}
