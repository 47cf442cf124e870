// The handshake slots of the admission gate (admission.ts, stage 3). Key
// exchange and signature checks are synchronous CPU work on the hub's one
// event loop (~3 ms each), and with 512 in flight one loop turn took seconds
// (docs/performance.md); so at most maxHandshakes run at a time. The rest
// wait in a queue that is fair across sources, weighted by their credit
// (fair-queue.ts), and bounded with random early drop (sshd's MaxStartups
// start:rate:full, applied only to sources above their share), so a flood
// cannot push legitimate handshakes past their deadline. A handshake holds
// its slot at most handshakeSlotMs: a peer that stalls after its banner keeps
// its connection until the deadline but no longer blocks the next one. A
// quarter of the slots is kept for sources with credit (hosts connected from
// them), so strangers never hold them all.
import type { Duplex } from 'node:stream';
import type { AdmissionLimits } from './admission-limits.js';
import type { Cut, Stage, Ticket } from './admission-ticket.js';
import { FairQueue } from './fair-queue.js';

export interface HandshakeSlotsOptions {
  limits: Pick<AdmissionLimits, 'maxHandshakes' | 'handshakeSlotMs' | 'maxQueued' | 'earlyDropQueued' | 'earlyDropPercent'>;
  /** Hosts connected from a source now or lately (source-book.ts): its weight in the queue is one more. */
  credit(source: string): number;
  /** Run the SSH protocol on a ticket's stream: it holds a slot now. */
  start(stream: Duplex): void;
  /** Cut a connection dropped from the queue (the gate counts it, and hands its ticket back through leave). */
  cut(t: Ticket, why: Cut): void;
  random: () => number;
}

export class HandshakeSlots {
  private readonly queue = new FairQueue<Ticket>();
  private active = 0;
  /** Slots held by connections from sources without credit, and how many they may hold. */
  private strangers = 0;
  private readonly strangerSlots: number;

  constructor(private readonly o: HandshakeSlotsOptions) {
    // A quarter of the slots is kept for sources with credit: strangers that
    // stall after their banner hold a slot for handshakeSlotMs each, and a
    // fleet reconnecting must not wait for those to lapse.
    this.strangerSlots = Math.max(1, o.limits.maxHandshakes - Math.floor(o.limits.maxHandshakes / 4));
  }

  /** Handshakes holding a slot. */
  get inProgress(): number { return this.active; }
  /** Connections waiting for one. */
  get waiting(): number { return this.queue.length; }

  /** A connection whose banner arrived: a slot now, a place in the queue, or cut. */
  enqueue(t: Ticket): void {
    const l = this.o.limits;
    // Sources with hosts connected (or recently) weigh more: a NAT'd fleet is not one stranger among many.
    const weight = 1 + this.o.credit(t.source);
    t.credited = weight > 1;
    if (this.active < l.maxHandshakes && (t.credited || this.strangers < this.strangerSlots)) return this.begin(t);
    const n = this.queue.length;
    if (n >= l.maxQueued) {
      const big = this.queue.largest()!;
      if (big === t.source || (this.queue.count(t.source) + 1) / weight >= this.queue.count(big) / this.queue.weightOf(big)) return this.o.cut(t, 'queue-full');
      this.o.cut(this.queue.shiftFrom(big)!, 'queue-full');
    } else if (n >= l.earlyDropQueued) {
      const rate = l.earlyDropPercent + (100 - l.earlyDropPercent) * (n - l.earlyDropQueued) / Math.max(1, l.maxQueued - l.earlyDropQueued);
      if (this.queue.overShare(t.source, weight) && this.o.random() * 100 < rate) return this.o.cut(t, 'early-drop');
    }
    t.stage = 'queued';
    this.queue.push(t.source, t, weight);
  }

  /** A ticket ended in `stage`: out of the queue, or its slot to the next one. */
  leave(t: Ticket, stage: Stage): void {
    if (stage === 'queued') this.queue.remove(t.source, t);
    this.release(t);
  }

  private begin(t: Ticket): void {
    t.stage = 'handshake';
    t.slot = true;
    this.active++;
    if (!t.credited) this.strangers++;
    t.lease = setTimeout(() => this.release(t), this.o.limits.handshakeSlotMs);
    t.lease.unref();
    this.o.start(t.stream!);
  }

  private release(t: Ticket): void {
    if (!t.slot) return;
    t.slot = false;
    this.active--;
    if (!t.credited) this.strangers--;
    if (t.lease) clearTimeout(t.lease);
    t.lease = null;
    while (this.active < this.o.limits.maxHandshakes && this.queue.length > 0) {
      // Weight 2 and up: only sources with credit, once strangers hold their share of the slots.
      const next = this.queue.shift(this.strangers < this.strangerSlots ? 0 : 2);
      if (!next) break;
      this.begin(next);
    }
  }
}
