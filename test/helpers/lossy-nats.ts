// An in-process stand-in for core NATS, for unit tests of the relay stream
// protocol (hub/cluster/proxy-relay-stream.ts) under loss. A real nats-server
// cannot be made to drop one chosen message, and core NATS is at most once (a
// slow consumer cut by the server, a route between servers reconnecting), so
// the loss cases are driven here; the stream on a real cluster is tested by
// test/integration/cluster-content-relay.test.ts.
//
// What it keeps of core NATS: delivery is asynchronous and in publish order
// per subject (what the stream's loss detection relies on), after `latencyMs`
// (frames are in flight while more are sent); a message nobody subscribes is
// gone; `*` and `>` match; request/reply goes through a reply subject, as
// the relay's open does.
import type { NatsConnection } from '@nats-io/transport-node';

export interface Sent {
  subject: string;
  data: Uint8Array;
  dropped: boolean;
  /** Handed to the subscribers (false while in flight, and for good if dropped). */
  delivered: boolean;
}

type Callback = (err: Error | null, msg: { data: Uint8Array; reply?: string }) => void;

export interface LossyNats {
  nc: NatsConnection;
  /** Everything published, in order, and whether the drop rule lost it. */
  sent: Sent[];
}

/** DROP decides which published messages are lost (it sees each once, in publish order). */
export function lossyNats(drop: (subject: string, data: Uint8Array) => boolean = () => false, latencyMs = 0): LossyNats {
  const subs = new Map<string, Set<Callback>>();
  const sent: Sent[] = [];
  let inbox = 0;
  const subscribe = (subject: string, o: { callback: Callback }) => {
    let set = subs.get(subject);
    if (!set) subs.set(subject, (set = new Set()));
    set.add(o.callback);
    return { unsubscribe: () => { set!.delete(o.callback); } };
  };
  const deliver = (subject: string, data: Uint8Array, reply?: string): void => {
    const copy = Uint8Array.from(data);
    const dropped = drop(subject, copy);
    const entry: Sent = { subject, data: copy, dropped, delivered: false };
    sent.push(entry);
    if (dropped) return;
    // Timers of one duration fire in the order they were set: per-subject order holds.
    const go = (): void => {
      entry.delivered = true;
      for (const [pattern, set] of [...subs]) if (matches(pattern, subject)) for (const cb of [...set]) cb(null, { data: copy, ...(reply ? { reply } : {}) });
    };
    if (latencyMs > 0) setTimeout(go, latencyMs); else setImmediate(go);
  };
  const nc = {
    subscribe,
    publish(subject: string, data?: Uint8Array) { deliver(subject, data ?? new Uint8Array()); },
    request(subject: string, data: Uint8Array, o: { timeout: number }) {
      const reply = `_INBOX.${++inbox}`;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => { sub.unsubscribe(); reject(new Error('timeout')); }, o.timeout);
        const sub = subscribe(reply, { callback: (_e, msg) => { clearTimeout(timer); sub.unsubscribe(); resolve(msg); } });
        deliver(subject, data, reply);
      });
    },
  };
  return { nc: nc as unknown as NatsConnection, sent };
}

/** NATS subject matching: `*` is one token, a final `>` the rest (the relay's open subscription is `<prefix>.proxy.open.*`). */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

export const FRAME = { data: 1, credit: 2, eof: 3, close: 4, ping: 5 } as const;
