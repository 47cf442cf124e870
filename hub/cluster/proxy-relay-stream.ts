// One end of a byte stream between two hubs over core NATS subjects, as a
// Node Duplex, so either hub pipes it into a socket or an SSH channel like any
// stream (proxy-relay.ts). Frames: proxy-relay-frames.ts.
//
// Flow control, both directions: a sender has at most the receiver's window
// of bytes sent and not yet credited. Past it, _write keeps the rest of its
// chunk and its callback until credit comes, so Node's own backpressure
// pauses whatever pipes into this stream (the admin's socket, the host's SSH
// channel). The receiver credits bytes as its readable buffer takes them
// while below its mark, and otherwise only when Node asks for more (_read):
// a slow reader on either side stops the far sender instead of growing
// either hub's memory. Per stream and direction at most window bytes are in
// flight, and a reader holds at most window + highWaterMark.
//
// Core NATS delivers each publisher's messages in order, at most once: a lost
// data frame (a slow consumer dropped by the server, a reconnect) shows as a
// gap in the numbering and ends the stream with an error rather than
// corrupting it. An idle stream pings; one that hears nothing for deadMs
// (the other hub died) ends with an error.
import { Duplex } from 'node:stream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { BentoError, type ErrorCode } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { decodeFrame, encodeFrame, MAX_CHUNK, type Frame } from './proxy-relay-frames.js';

export interface RelayStreamOptions {
  nc: NatsConnection;
  /** Where this end's frames go (the other end subscribes it). */
  send: string;
  /** Where this end receives (subscribed here, at construction). */
  recv: string;
  /** Bytes the other end may have in flight toward this one. */
  window: number;
  /** Bytes this end may have in flight toward the other (its window). Set later with setPeerWindow() if unknown yet. */
  peerWindow: number;
  log: Logger;
  /** Ping after this long without sending. Default 5 s. */
  idleMs?: number;
  /** Give up after this long without hearing anything. Default 20 s. */
  deadMs?: number;
}

export class RelayStream extends Duplex {
  private sentSeq = 0;
  private sentBytes = 0;
  private ackedBytes = 0;
  private recvSeq = 0;
  private pushedBytes = 0;
  private creditedBytes = 0;
  private peerWindow: number;
  /** The chunk _write is sending, how far it got, and its callback (called once all of it is sent). */
  private out: { chunk: Buffer; off: number; cb: (err?: Error | null) => void } | null = null;
  private readonly sub: Subscription;
  private readonly timer: NodeJS.Timeout;
  private lastSend = Date.now();
  private lastRecv = Date.now();
  private peerClosed = false;
  private readEnded = false;

  constructor(private readonly o: RelayStreamOptions) {
    super({ allowHalfOpen: true, readableHighWaterMark: MAX_CHUNK, writableHighWaterMark: MAX_CHUNK });
    this.peerWindow = o.peerWindow;
    this.sub = o.nc.subscribe(o.recv, { callback: (err, msg) => (err ? this.fail('CLUSTER_UNAVAILABLE', err.message) : this.onFrame(msg.data)) });
    const idle = o.idleMs ?? 5000;
    this.timer = setInterval(() => this.tick(idle, o.deadMs ?? 20_000), Math.min(idle, 1000));
    this.timer.unref();
  }

  /** Bytes sent and not yet passed on by the other end (what the window bounds). */
  get inFlight(): number {
    return this.sentBytes - this.ackedBytes;
  }

  setPeerWindow(n: number): void {
    this.peerWindow = n;
    this.pump();
  }

  // --- Duplex ---

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.peerClosed) { cb(); return; } // the other end is gone: nothing reads this any more
    this.out = { chunk, off: 0, cb };
    this.pump();
  }

  /** Send what the window allows of the chunk in hand; its callback once all of it went. */
  private pump(): void {
    const o = this.out;
    if (!o) return;
    while (o.off < o.chunk.length) {
      const room = this.peerWindow - this.inFlight;
      if (room <= 0) return; // credit calls pump() again
      const n = Math.min(MAX_CHUNK, room, o.chunk.length - o.off);
      if (!this.send({ t: 'data', seq: ++this.sentSeq, data: o.chunk.subarray(o.off, o.off + n) })) {
        this.out = null;
        o.cb(this.sendError());
        return;
      }
      this.sentBytes += n;
      o.off += n;
    }
    this.out = null;
    o.cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.peerClosed && !this.send({ t: 'eof', seq: ++this.sentSeq })) { cb(this.sendError()); return; }
    cb();
  }

  override _read(): void {
    // The buffer went below its mark: everything pushed so far may be credited.
    this.credit(true);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearInterval(this.timer);
    if (!this.peerClosed) {
      const code = err instanceof BentoError ? err.code : err ? 'FORWARD_FAILED' : undefined;
      this.send({ t: 'close', ...(code ? { code } : {}), ...(err ? { message: err.message } : {}) });
    }
    this.sub.unsubscribe();
    const o = this.out;
    this.out = null;
    o?.cb(err);
    cb(err);
  }

  // --- frames ---

  private onFrame(data: Uint8Array): void {
    if (this.destroyed) return;
    this.lastRecv = Date.now();
    let f: Frame;
    try { f = decodeFrame(data); } catch (err) { this.fail('PROTOCOL_MALFORMED', (err as Error).message); return; }
    switch (f.t) {
      case 'data':
        if (f.seq !== this.recvSeq + 1 || this.readEnded) { this.fail('FORWARD_FAILED', `relay: data frame ${f.seq} after ${this.recvSeq}: lost between hubs`); return; }
        this.recvSeq = f.seq;
        this.pushedBytes += f.data.length;
        // Taken below the mark: credit (in steps). Over it: Node calls _read once the reader caught up.
        if (this.push(Buffer.from(f.data))) this.credit(false);
        return;
      case 'eof':
        if (f.seq !== this.recvSeq + 1) { this.fail('FORWARD_FAILED', `relay: end after frame ${this.recvSeq}, expected ${f.seq - 1}: data lost between hubs`); return; }
        this.recvSeq = f.seq;
        this.endReadable();
        return;
      case 'credit':
        if (f.consumed > this.ackedBytes) this.ackedBytes = Math.min(f.consumed, this.sentBytes);
        this.pump();
        return;
      case 'close':
        this.peerClosed = true;
        if (f.code) { this.destroy(new BentoError(f.code, f.message ?? 'the other hub closed the stream')); return; }
        // A clean close: whatever we still hold is read; nothing more will come, nothing we send is read.
        this.endReadable();
        this.dropOut();
        if (!this.writableEnded) this.end();
        return;
      case 'ping':
        return;
    }
  }

  private endReadable(): void {
    if (this.readEnded) return;
    this.readEnded = true;
    this.push(null);
  }

  /** Credit what the readable buffer took: in quarter-window steps, or all of it when Node asks for more. */
  private credit(wanted: boolean): void {
    if (this.destroyed) return;
    const owed = this.pushedBytes - this.creditedBytes;
    if (owed <= 0 || (!wanted && owed < this.o.window / 4)) return;
    this.creditedBytes = this.pushedBytes;
    this.send({ t: 'credit', consumed: this.pushedBytes });
  }

  /** The other end is gone: a chunk in hand is dropped (nobody would read it). */
  private dropOut(): void {
    const o = this.out;
    this.out = null;
    o?.cb();
  }

  private tick(idleMs: number, deadMs: number): void {
    const now = Date.now();
    if (now - this.lastRecv > deadMs) { this.fail('CLUSTER_UNAVAILABLE', `relay: nothing from the other hub for ${Math.round((now - this.lastRecv) / 1000)} s`); return; }
    if (now - this.lastSend >= idleMs) this.send({ t: 'ping' });
  }

  private send(f: Frame): boolean {
    try {
      this.o.nc.publish(this.o.send, encodeFrame(f));
      this.lastSend = Date.now();
      return true;
    } catch (err) {
      this.o.log.warn({ subject: this.o.send, err: (err as Error).message }, 'relay: cannot publish');
      return false;
    }
  }

  private sendError(): BentoError {
    return new BentoError('CLUSTER_UNAVAILABLE', 'relay: the NATS connection is closed');
  }

  private fail(code: ErrorCode, message: string): void {
    this.o.log.warn({ subject: this.o.recv, code, message }, 'relay stream failed');
    this.destroy(new BentoError(code, message));
  }
}
