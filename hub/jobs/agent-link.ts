// What the scheduler needs of an agent's connection: its name, its hello, and
// a way to send it a message. A server/live-session.ts LiveSession is one; a
// unit test's plain object is another (test/unit/hub-scheduler.test.ts), and
// a cluster hub's link to an agent connected to another hub can be a third.
import type { Hello, HubMessage } from '../../common/protocol/messages.js';

export interface AgentLink {
  readonly name: string;
  /** The agent's hello; null before it arrived. */
  readonly hello: Hello | null;
  /** The connection is gone (sends are dropped). */
  readonly closed: boolean;
  /** Returns false when the message could not be sent (the connection is gone). */
  send(msg: HubMessage): boolean;
}
