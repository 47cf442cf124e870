// The control channel of one agent: framing, validation and the hello
// handshake. Bad input (not JSON, too long, unknown type, wrong field types,
// a message before hello, a hello for another name) ends this agent's
// connection with a logged reason and an `error` message; nothing thrown
// here can reach the hub's event loop. What the hub has read but not yet
// handled is bounded per session: over the limits, reading stops and the
// SSH window with it (inbound-gate.ts).
import type { ServerChannel } from 'ssh2';
import { LineDecoder } from '../../common/protocol/codec.js';
import { HUB_CAPABILITIES, parseMessage, type AgentMessage, type Hello, type Welcome } from '../../common/protocol/messages.js';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import { PROTOCOL_VERSION, BENTO_VERSION } from '../../common/protocol/version.js';
import type { Logger } from '../../common/platform/log.js';
import type { LiveSession } from './live-session.js';
import type { InboundMonitor } from './inbound-gate.js';
import { UnreadHolds } from './unread-holds.js';

/** What one message counts toward limits.sessionBytesPerSecond beyond its bytes. */
const MESSAGE_OVERHEAD_BYTES = 256;

export interface ControlHooks {
  /** A valid hello arrived: the session is now live. */
  onHello(session: LiveSession, hello: Hello): void;
  /**
   * Any later message, already validated. Until the promise it returns
   * settles, the message counts against the session's inbound limits.
   */
  onMessage(session: LiveSession, msg: AgentMessage): Promise<void> | void;
  heartbeatMs(): number;
  /** What else the welcome says (a cluster: how agents reach the live hubs). */
  welcomeExtras?(): Pick<Welcome, 'hubs'>;
}

export interface ControlOptions {
  hooks: ControlHooks;
  log: Logger;
  /** Per-session inbound limits (absent: unlimited, as in unit tests of other parts). */
  inbound?: InboundMonitor;
}

export function attachControl(session: LiveSession, channel: ServerChannel, o: ControlOptions): void {
  const { hooks, log } = o;
  session.channel = channel;
  // While the hub does not read, the agent's heartbeats wait unanswered in the channel: the gate says it is alive.
  const gate = o.inbound?.gate(session, channel, Math.max(50, Math.floor(hooks.heartbeatMs() / 2))) ?? null;
  session.inbound = gate;
  /** Messages whose answers (echoes, acks) the peer has not read hold their places in the limits until it does. */
  const holds = gate ? new UnreadHolds(channel, session.outbound) : null;
  const fail = (err: BentoError): void => {
    decoder.stop();
    log.warn({ host: session.name, code: err.code, reason: err.message }, 'closing agent connection: bad control input');
    session.close(err.code, err.message);
  };
  const decoder = new LineDecoder((value, bytes) => {
    // Each message costs the hub more than its bytes (parsing, a turn through its host queue): small ones count extra.
    gate?.charge(bytes + MESSAGE_OVERHEAD_BYTES);
    try {
      handle(parseMessage(value, 'agent'), bytes);
    } catch (err) {
      fail(asBentoError(err));
    }
  }, fail);

  // session.lastInbound is kept by the transport's byte feed (ssh-server.ts), not per message.
  const handle = (msg: AgentMessage, bytes: number): void => {
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
      // A peer that sends but does not read would make the echoes pile up in
      // the channel's write buffer or on its connection: past their high-water
      // marks each one holds a place in the inbound limits until it reads again.
      if (gate && holds!.backedUp()) holds!.hold(gate.take(bytes));
      return;
    }
    const pending = hooks.onMessage(session, msg);
    if (gate && pending) {
      // Handled: its answer (a job.ack) may still wait unread (unread-holds.ts).
      const release = gate.take(bytes);
      const handled = (): void => holds!.hold(release);
      pending.then(handled, handled);
    }
  };

  channel.on('data', (chunk: Buffer) => decoder.push(chunk));
  channel.on('error', (err: Error) => log.debug({ host: session.name, err: err.message }, 'control channel error'));
  channel.on('close', () => {
    decoder.stop();
    gate?.close();
    // Without its control channel an agent is unreachable: drop the connection
    // so it reconnects rather than lingering as a ghost in `list`.
    if (!session.closed) {
      session.closed = true;
      session.conn.end();
    }
  });
}
