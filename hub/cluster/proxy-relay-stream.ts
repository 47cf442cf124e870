// One end of a byte stream between two hubs over core NATS subjects, as a
// Node Duplex, so either hub pipes it into a socket or an SSH channel like any
// stream (proxy-relay.ts). Frames: proxy-relay-frames.ts.
//
// Flow control, both directions: a sender may have at most the receiver's
// window of bytes sent and not yet passed on by the receiver (credit frames
// report what it passed on). Beyond it, _write holds its callback, so Node's
// own backpressure pauses whatever pipes into this stream (the admin's socket,
// the host's SSH channel). The receiver passes bytes on by push(); it reports
// credit only for bytes that left its readable buffer, so a slow reader on
// either side stops the far sender instead of growing either hub's memory.
// Per stream and direction at most window + highWaterMark bytes wait.
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
  private heldWrite: ((err?: Error | null) => void) | null = null;
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
    this.releaseWrite();
  }

  // --- Duplex ---

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.peerClosed) { cb(); return; } // the other end is gone: nothing reads this any more
    for (let off = 0; off < chunk.length; off += MAX_CHUNK) {
      const part = chunk.subarray(off, off + MAX_CHUNK);
      if (!this.send({ t: 'data', seq: ++this.sentSeq, data: part })) { cb(this.sendError()); return; }
      this.sentBytes += part.length;
    }
    if (this.inFlight < this.peerWindow) cb();
    else this.heldWrite = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.peerClosed && !this.send({ t: 'eof', seq: ++this.sentSeq })) { cb(this.sendError()); return; }
    cb();
  }

  override _read(): void {
    this.credit();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearInterval(this.timer);
    if (!this.peerClosed) {
      const code = err instanceof BentoError ? err.code : err ? 'FORWARD_FAILED' : undefined;
      this.send({ t: 'close', ...(code ? { code } : {}), ...(err ? { message: err.message } : {}) });
    }
    this.sub.unsubscribe();
    const held = this.heldWrite;
    this.heldWrite = null;
    held?.(err);
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
        this.push(Buffer.from(f.data));
        this.credit();
        return;
      case 'eof':
        if (f.seq !== this.recvSeq + 1) { this.fail('FORWARD_FAILED', `relay: end after frame ${this.recvSeq}, expected ${f.seq - 1}: data lost between hubs`); return; }
        this.recvSeq = f.seq;
        this.endReadable();
        return;
      case 'credit':
        if (f.consumed > this.ackedBytes) this.ackedBytes = Math.min(f.consumed, this.sentBytes);
        this.releaseWrite();
        return;
      case 'close':
        this.peerClosed = true;
        if (f.code) { this.destroy(new BentoError(f.code, f.message ?? 'the other hub closed the stream')); return; }
        // A clean close: whatever we still hold is read; nothing more will come, nothing we send is read.
        this.endReadable();
        this.releaseWrite();
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

  /** Report the bytes that left our readable buffer (a reader that lags gets no new data). */
  private credit(): void {
    const passed = this.pushedBytes - this.readableLength;
    if (passed <= this.creditedBytes) return;
    // Not for every small chunk: when a quarter window passed, or when the reader caught up.
    if (passed - this.creditedBytes < this.o.window / 4 && this.readableLength > 0) return;
    this.creditedBytes = passed;
    this.send({ t: 'credit', consumed: passed });
  }

  private releaseWrite(): void {
    if (!this.heldWrite || (this.inFlight >= this.peerWindow && !this.peerClosed)) return;
    const cb = this.heldWrite;
    this.heldWrite = null;
    cb();
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
