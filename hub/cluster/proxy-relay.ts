// `bento-hub proxy HOST PORT` at one hub when HOST's tunnel is held by
// another hub of the cluster. Everything between the hubs is NATS:
//
//   1. The asking hub subscribes its end's subject, then sends an open request
//      to <prefix>.proxy.open.<host>. Every hub listens there; only the hub
//      holding a live session of HOST answers (no answer within the timeout:
//      HOST_OFFLINE, no hub holds it).
//   2. That hub opens the forwarded channel to the host exactly as a local
//      `proxy` does (the agent's own allow-list decides), subscribes its end,
//      and answers ok (or FORBIDDEN / FORWARD_FAILED in the host's words).
//   3. The bytes flow as frames on <prefix>.proxy.s.<stream>.{a,b}, flow
//      controlled per direction (proxy-relay-stream.ts), half-close and close
//      carried across, errors ending both sides.
import { nuid, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Duplex } from 'node:stream';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { encodeToken } from './names.js';
import { encodeJson, OPEN_VERSION, parseOpenReply, parseOpenRequest, RELAY_VERSION, type OpenRequest } from './proxy-relay-frames.js';
import { RelayStream } from './proxy-relay-stream.js';

/** The channel to a host this hub opened: an ssh2 channel (eof() half-closes it) or any Duplex. */
export type LocalChannel = Duplex & { eof?: () => void; close?: () => void };

export interface ProxyRelayOptions {
  nc: NatsConnection;
  prefix: string;
  hubName: string;
  /** Does this hub hold a live session of HOST? */
  holds(host: string): boolean;
  /** Open the forwarded channel to HOST:PORT on that session; throws FORBIDDEN / FORWARD_FAILED / HOST_OFFLINE. */
  openLocal(host: string, port: number): Promise<LocalChannel>;
  /**
   * Which hub holds HOST as this hub sees the cluster's holds (null: none).
   * With it a host held nowhere is refused at once, and a holder that does
   * not answer is named; the request still goes to every hub, so a view a
   * moment behind cannot send it to the wrong one.
   */
  holderOf?(host: string): string | null;
  log: Logger;
  /** Bytes in flight per direction. Default 256 KiB. */
  window?: number;
  /** How long the asking hub waits for the holder's answer. Default 5 s. */
  openTimeoutMs?: number;
  idleMs?: number;
  deadMs?: number;
}

const DEFAULT_WINDOW = 256 * 1024;

export class ProxyRelay {
  private sub: Subscription | null = null;
  private readonly streams = new Set<RelayStream>();

  constructor(private readonly o: ProxyRelayOptions) {}

  /** Answer open requests for the hosts this hub holds. */
  start(): void {
    this.sub = this.o.nc.subscribe(`${this.o.prefix}.proxy.open.*`, {
      callback: (err, msg) => {
        if (err) { this.o.log.warn({ err: err.message }, 'relay: open subscription failed'); return; }
        let req: OpenRequest;
        try { req = parseOpenRequest(msg.data); } catch (e) {
          this.o.log.warn({ err: (e as Error).message }, 'relay: dropping a malformed open request');
          return;
        }
        if (!msg.reply || !this.o.holds(req.host)) return; // another hub holds it, or nobody does
        void this.serve(req, msg.reply);
      },
    });
  }

  /** Active relayed streams at this hub (both roles). */
  get active(): number {
    return this.streams.size;
  }

  /**
   * At the asking hub: open a stream to HOST:PORT through the hub holding
   * HOST. Resolves once the holder opened the channel; pipe the result into
   * the admin's socket. HOST_OFFLINE when no hub holds it.
   */
  async connect(host: string, port: number): Promise<RelayStream> {
    const holder = this.o.holderOf ? this.o.holderOf(host) : undefined;
    if (holder === null) throw new BentoError('HOST_OFFLINE', `host "${host}" is not connected to any hub of the cluster`);
    const id = nuid.next();
    const window = this.o.window ?? DEFAULT_WINDOW;
    const base = `${this.o.prefix}.proxy.s.${id}`;
    // Our end first: the holder may send as soon as it answers. Until it does, its version is unknown: version 1's pings.
    const stream = this.track(new RelayStream({ nc: this.o.nc, send: `${base}.a`, recv: `${base}.b`, window, peerWindow: 0, peerRelay: 1, log: this.o.log, ...this.timing() }));
    try {
      const req: OpenRequest = { v: OPEN_VERSION, relay: RELAY_VERSION, host, port, stream: id, from: this.o.hubName, window };
      let answer;
      try {
        answer = await this.o.nc.request(`${this.o.prefix}.proxy.open.${encodeToken(host)}`, encodeJson(req), { timeout: this.o.openTimeoutMs ?? 5000 });
      } catch {
        throw new BentoError('HOST_OFFLINE', holder
          ? `host "${host}" is held by hub ${holder}, which did not answer (it may have just lost it, or NATS is unreachable)`
          : `host "${host}" is not connected to this hub, and no other hub of the cluster answered for it`);
      }
      const reply = parseOpenReply(answer.data);
      if (!reply.ok) throw new BentoError(reply.code, reply.message);
      stream.setPeer(reply.window, reply.relay);
      this.o.log.info({ host, port, stream: id, relay: reply.relay }, 'relay: proxy channel opened through another hub');
      return stream;
    } catch (err) {
      stream.destroy();
      throw asBentoError(err);
    }
  }

  async close(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = null;
    for (const s of [...this.streams]) s.destroy(new BentoError('HUB_NOT_RUNNING', 'the hub relaying this stream stopped'));
  }

  /** At the holding hub: open the channel, answer, and splice the channel into the stream. */
  private async serve(req: OpenRequest, reply: string): Promise<void> {
    const window = this.o.window ?? DEFAULT_WINDOW;
    let channel: LocalChannel;
    try {
      channel = await this.o.openLocal(req.host, req.port);
    } catch (err) {
      const e = asBentoError(err);
      this.answer(reply, { ok: false, code: e.code, message: e.message });
      return;
    }
    const base = `${this.o.prefix}.proxy.s.${req.stream}`;
    // The lower of the two versions: an older asker gets the frames it knows (and reads no `relay` in the answer).
    const relay = Math.min(req.relay, RELAY_VERSION);
    const stream = this.track(new RelayStream({ nc: this.o.nc, send: `${base}.b`, recv: `${base}.a`, window, peerWindow: req.window, peerRelay: relay, log: this.o.log, ...this.timing() }));
    this.o.log.info({ host: req.host, port: req.port, for: req.from, stream: req.stream, relay }, 'relay: proxy channel opened for another hub');
    spliceChannel(channel, stream);
    this.answer(reply, { ok: true, window, relay });
  }

  private answer(reply: string, v: Parameters<typeof encodeJson>[0]): void {
    try { this.o.nc.publish(reply, encodeJson(v)); } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'relay: cannot answer an open request');
    }
  }

  private timing(): { idleMs?: number; deadMs?: number } {
    return { ...(this.o.idleMs ? { idleMs: this.o.idleMs } : {}), ...(this.o.deadMs ? { deadMs: this.o.deadMs } : {}) };
  }

  private track(s: RelayStream): RelayStream {
    this.streams.add(s);
    s.once('close', () => this.streams.delete(s));
    s.on('error', () => undefined); // reported by whoever pipes it, and by the stream's own log line
    return s;
  }
}

/**
 * The holder's side: the host's channel and the stream, both ways. The far
 * side's end-of-data half-closes the channel (SSH EOF after the data written
 * before it), so the host's answer still comes back; closing either ends both.
 */
export function spliceChannel(channel: LocalChannel, stream: RelayStream): void {
  channel.pipe(stream);
  stream.pipe(channel, { end: false });
  stream.once('end', () => {
    if (channel.destroyed || channel.writableEnded) return;
    if (channel.eof) channel.write(Buffer.alloc(0), () => channel.eof!());
    else channel.end();
  });
  channel.on('error', (err: Error) => stream.destroy(err));
  stream.on('error', () => (channel.close ? channel.close() : channel.destroy()));
  channel.on('close', () => { if (!stream.writableEnded) stream.end(); });
  stream.on('close', () => (channel.close ? channel.close() : channel.destroy()));
}
