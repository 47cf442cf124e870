// One unauthenticated connection's way through the admission gate
// (admission.ts), and how its end is counted.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { AdmissionEvent, DropReason } from './admission-stats.js';

export type Cut = DropReason | 'banner-timeout' | 'deadline' | 'shutdown';
export type Stage = 'banner' | 'queued' | 'handshake' | 'done';

/** One unauthenticated connection's way through the gate. */
export class Ticket {
  stage: Stage = 'banner';
  stream: Duplex | null = null;
  slot = false;
  /** Its source has credit (hosts connected from it): it may use the slots kept from strangers. */
  credited = false;
  /** What the SSH layer saw (ssh-server.ts), for the failure it counts as if the peer leaves. */
  kex = false;
  authFailed = false;
  protocolError = false;
  ok = false;
  cut: Cut | null = null;
  timers: NodeJS.Timeout[] = [];
  lease: NodeJS.Timeout | null = null;
  cancelBanner: (() => void) | null = null;
  onClose: () => void = () => undefined;

  constructor(readonly socket: net.Socket, readonly source: string, readonly exempt: boolean) {}
}

/**
 * How a connection that never authenticated ended, as a counted event, and
 * whether that was the peer's fault (it counts toward its source's penalty).
 * Waiting in the queue too long is the hub's doing; a peer that gave up
 * before the key exchange did nothing worth a penalty.
 */
export function outcomeOf(t: Ticket, stage: Stage): { event: AdmissionEvent | null; peersFault: boolean } {
  let event: AdmissionEvent | null;
  switch (t.cut) {
    case 'banner-timeout': event = { kind: 'timed-out', stage: 'banner' }; break;
    case 'deadline': event = { kind: 'timed-out', stage: stage === 'queued' ? 'queue' : stage === 'banner' ? 'banner' : 'handshake' }; break;
    case 'garbage': case 'early-drop': case 'queue-full': case 'evicted': event = { kind: 'dropped', reason: t.cut }; break;
    case 'shutdown': event = null; break;
    default:
      event = t.authFailed ? { kind: 'failed', reason: 'auth-failed' }
        : t.protocolError ? { kind: 'failed', reason: 'protocol-error' }
          : t.kex ? { kind: 'failed', reason: 'no-auth' } : null;
  }
  const peersFault = event !== null && (event.kind === 'failed' || (event.kind === 'timed-out' && event.stage !== 'queue') || (event.kind === 'dropped' && event.reason === 'garbage'));
  return { event, peersFault };
}
