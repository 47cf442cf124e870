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
// Core NATS delivers each publisher's messages on one subject in order, at
// most once (a slow consumer cut by the server, a route reconnecting). A
// frame lost with others after it shows as a gap in the numbering. One that
// nothing follows would go unnoticed, so each end pings every idleMs however
// busy it is, and (relay version 2) the ping says the last number this end
// sent, whether that was its end of data, and the running total it credited:
//  - a ping naming a number not received means data or the end of data was
//    lost (the ping went after it on the same subject, so it cannot overtake
//    it): both sides end with FORWARD_FAILED, as for a gap;
//  - its credit total is a credit frame sent again (idempotent: a total), so
//    a lost credit no longer holds the writer at the full window for good.
// The clean close frame says the last number too, so a stream closed right
// after a lost frame ends with the error instead of looking complete. One
// that hears nothing for deadMs (the other hub died) ends with an error.
// Toward a version 1 hub pings carry no state (it would refuse them).
import { Duplex } from 'node:stream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { BentoError, type ErrorCode } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { decodeFrame, encodeFrame, MAX_CHUNK, RELAY_VERSION, type Frame, type PingState } from './proxy-relay-frames.js';

export interface RelayStreamOptions {
  nc: NatsConnection;
  /** Where this end's frames go (the other end subscribes it). */
  send: string;
  /** Where this end receives (subscribed here, at construction). */
  recv: string;
  /** Bytes the other end may have in flight toward this one. */
  window: number;
  /** Bytes this end may have in flight toward the other (its window). Set later with setPeer() if unknown yet. */
  peerWindow: number;
  /** The stream version agreed with the other end (default RELAY_VERSION). Set later with setPeer() if unknown yet. */
  peerRelay?: number;
  log: Logger;
  /** Ping this often (a ping carries this end's state, so also while data flows). Default 5 s. */
  idleMs?: number;
  /** Give up after this long without hearing anything. Default 20 s. */
  deadMs?: number;
}

export class RelayStream extends Duplex {
  private sentSeq = 0;
  private sentEof = false;
  private sentBytes = 0;
  private ackedBytes = 0;
  private recvSeq = 0;
  private pushedBytes = 0;
  private creditedBytes = 0;
  private peerWindow: number;
  private peerRelay: number;
  /** The chunk _write is sending, how far it got, and its callback (called once all of it is sent). */
  private out: { chunk: Buffer; off: number; cb: (err?: Error | null) => void } | null = null;
  private readonly sub: Subscription;
  private readonly timer: NodeJS.Timeout;
  private lastPing = Date.now();
  private lastRecv = Date.now();
  private peerClosed = false;
  private readEnded = false;

  constructor(private readonly o: RelayStreamOptions) {
    super({ allowHalfOpen: true, readableHighWaterMark: MAX_CHUNK, writableHighWaterMark: MAX_CHUNK });
    this.peerWindow = o.peerWindow;
    this.peerRelay = o.peerRelay ?? RELAY_VERSION;
    this.sub = o.nc.subscribe(o.recv, { callback: (err, msg) => (err ? this.fail('CLUSTER_UNAVAILABLE', err.message) : this.onFrame(msg.data)) });
    const idle = o.idleMs ?? 5000;
    this.timer = setInterval(() => this.tick(idle, o.deadMs ?? 20_000), Math.min(idle, 1000));
    this.timer.unref();
  }

  /** Bytes sent and not yet passed on by the other end (what the window bounds). */
  get inFlight(): number {
    return this.sentBytes - this.ackedBytes;
  }

  /** What the open reply said: the other end's window and the stream version it picked. */
  setPeer(window: number, relay: number): void {
    this.peerWindow = window;
    this.peerRelay = relay;
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
      // Numbered once published: a ping must never name a number that was not sent.
      if (!this.send({ t: 'data', seq: this.sentSeq + 1, data: o.chunk.subarray(o.off, o.off + n) })) {
        this.out = null;
        o.cb(this.sendError());
        return;
      }
      this.sentSeq++;
      this.sentBytes += n;
      o.off += n;
    }
    this.out = null;
    o.cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.peerClosed) { cb(); return; }
    if (!this.send({ t: 'eof', seq: this.sentSeq + 1 })) { cb(this.sendError()); return; }
    this.sentSeq++;
    this.sentEof = true;
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
      this.send({ t: 'close', ...(code ? { code } : {}), ...(err ? { message: err.message } : {}), seq: this.sentSeq });
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
        this.acked(f.consumed);
        return;
      case 'close':
        this.peerClosed = true;
        if (f.code) { this.destroy(new BentoError(f.code, f.message ?? 'the other hub closed the stream')); return; }
        // Closed right after a frame that never came: the stream is not whole (seq: absent from version 1 hubs).
        if (f.seq !== undefined && !this.allArrived(f.seq, false)) return;
        // A clean close: whatever we still hold is read; nothing more will come, nothing we send is read.
        this.endReadable();
        this.dropOut();
        if (!this.writableEnded) this.end();
        return;
      case 'ping':
        if (f.state && this.allArrived(f.state.seq, f.state.eof)) this.acked(f.state.consumed);
        return;
    }
  }

  /**
   * The other end says it sent up to SEQ. Everything it sent before saying so
   * went ahead on the same subject, so a number not received here was lost:
   * fail both sides, as a gap does.
   */
  private allArrived(seq: number, eof: boolean): boolean {
    if (seq <= this.recvSeq) return true;
    this.fail('FORWARD_FAILED', eof && seq === this.recvSeq + 1
      ? `relay: the other hub ended its data after frame ${this.recvSeq}, the end never arrived: lost between hubs`
      : `relay: the other hub sent up to frame ${seq}, only ${this.recvSeq} arrived: lost between hubs`);
    return false;
  }

  /** A credit total (a credit frame, or one repeated in a ping): idempotent, only ever moves forward. */
  private acked(consumed: number): void {
    if (consumed > this.ackedBytes) this.ackedBytes = Math.min(consumed, this.sentBytes);
    this.pump();
  }

  /** This end's state for the other to check against what it received (version 2; a version 1 hub refuses it). */
  private pingState(): PingState | undefined {
    return this.peerRelay >= 2 ? { seq: this.sentSeq, eof: this.sentEof, consumed: this.creditedBytes } : undefined;
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
    if (now - this.lastPing < idleMs) return;
    const state = this.pingState();
    this.send({ t: 'ping', ...(state ? { state } : {}) });
    this.lastPing = now;
  }

  private send(f: Frame): boolean {
    try {
      this.o.nc.publish(this.o.send, encodeFrame(f));
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
