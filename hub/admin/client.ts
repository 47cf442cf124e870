// The CLI side of the admin socket: send one request, read events.
import net from 'node:net';
import { LineDecoder, encodeLine } from '../../common/protocol/codec.js';
import type { AdminEvent, AdminRequest } from '../../common/protocol/admin.js';
import { BentoError, isErrorCode } from '../../common/protocol/errors.js';
import type { Gunzip } from 'node:zlib';
import { gunzip, isGzipped } from './gzip.js';

export interface AdminConnection {
  socket: net.Socket;
  /** Events in order; ends when the hub closes the socket. */
  events: AsyncIterable<AdminEvent>;
}

export async function connectAdmin(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    sock.once('connect', () => { sock.off('error', reject); resolve(sock); });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new BentoError('HUB_NOT_RUNNING', `the hub is not running for this fleet (no answer on ${socketPath}); start it with \`bento-hub serve\``));
      } else if (err.code === 'EACCES') {
        reject(new BentoError('FORBIDDEN', `no permission to use ${socketPath}: only the hub's admins may`));
      } else {
        reject(err);
      }
    });
  });
}

export async function adminRequest(socketPath: string, req: AdminRequest): Promise<AdminConnection> {
  const socket = await connectAdmin(socketPath);
  socket.write(encodeLine(req));
  return { socket, events: eventsOf(socket) };
}

/** Events read ahead of the command; more pause the socket (so a slow terminal slows the hub's stream, which skips lines for it). */
const READ_AHEAD = 1024;
/**
 * One answer line from the hub at most. It is the hub answering its admin,
 * not a peer to defend against, but still a bound: `status --json` of 45,000
 * hosts is one line of ~16.8 MB, over the 16 MiB the protocol's lines get
 * elsewhere (seen in the 45,000-agent bench: PROTOCOL_OVERSIZED).
 */
const MAX_ANSWER_LINE_BYTES = 256 * 1024 * 1024;

async function* eventsOf(socket: net.Socket): AsyncGenerator<AdminEvent> {
  const queue: AdminEvent[] = [];
  let failure: Error | null = null;
  let ended = false;
  let wake: (() => void) | null = null;
  const poke = (): void => { wake?.(); wake = null; };
  const decoder = new LineDecoder((v) => {
    queue.push(v as AdminEvent);
    if (queue.length >= READ_AHEAD) { socket.pause(); inflate?.pause(); }
    poke();
  }, (err) => { failure = err; poke(); }, MAX_ANSWER_LINE_BYTES);
  const fail = (err: Error): void => { failure = err; poke(); };
  const end = (): void => { ended = true; poke(); };
  // The first chunk says whether the hub compressed its answer (gzip.ts): then every byte goes
  // through gunzip, and the answer ends when gunzip does, after the socket's end.
  let inflate = null as Gunzip | null;
  let push = (c: Buffer): void => {
    if (isGzipped(c)) {
      const z = (inflate = gunzip());
      z.on('data', (d: Buffer) => decoder.push(d));
      z.on('error', (err) => fail(new BentoError('PROTOCOL_MALFORMED', `the hub's compressed answer is broken: ${err.message}`)));
      z.on('end', end);
      push = (d) => z.write(d);
    } else {
      push = (d) => decoder.push(d);
    }
    push(c);
  };
  socket.on('data', (c: Buffer) => push(c));
  let socketEnded = false;
  socket.on('end', () => { socketEnded = true; if (inflate) inflate.end(); else end(); });
  // A socket that closed without its end (the hub died) ends the answer at once; after its end, gunzip does.
  socket.on('close', () => { if (!inflate || !socketEnded) end(); });
  socket.on('error', fail);
  for (;;) {
    while (queue.length > 0) {
      const e = queue.shift()!;
      if (queue.length < READ_AHEAD / 2 && socket.isPaused()) { socket.resume(); inflate?.resume(); }
      if (e.ev === 'error') throw new BentoError(isErrorCode(e.code) ? e.code : 'INTERNAL', e.message);
      yield e;
    }
    if (failure) throw failure;
    if (ended) return;
    await new Promise<void>((r) => { wake = r; });
  }
}

/** Request/response helper for ops that answer with one event. */
export async function adminCall<E extends AdminEvent['ev']>(socketPath: string, req: AdminRequest, want: E): Promise<Extract<AdminEvent, { ev: E }>> {
  const { events, socket } = await adminRequest(socketPath, req);
  try {
    for await (const e of events) if (e.ev === want) return e as Extract<AdminEvent, { ev: E }>;
  } finally {
    socket.destroy();
  }
  throw new BentoError('INTERNAL', `hub closed the connection without a ${want} answer`);
}
