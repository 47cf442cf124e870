// The soak's steady trigger load: RATE triggers a second, each of a random
// host at a random running hub, as an admin would send them (`trigger`
// without follow, every other one with --queue so jobs for a host that is
// between hubs wait for it). Every "accepted" answer is a promise the cluster
// must keep: the job ends exactly once (the soak checks it after each cycle).
// A trigger a hub refuses (the host is busy, offline, or the hub cannot reach
// NATS) or one cut off by a kill is counted, not an error: it was never
// accepted. Each request is bounded in time; pause() waits for those in flight.
import { adminRequest } from '../bench/hub.js';

export interface TriggerLoadOptions {
  /** Admin sockets of the hubs running now (the soak updates it as it kills and restarts them). */
  sockets: () => string[];
  hosts: string[];
  perSecond: number;
  /** Random numbers in [0, 1) (seeded by the soak, so a run can be repeated). */
  random: () => number;
}

export interface TriggerCounts {
  sent: number;
  accepted: number;
  /** A trigger for a host already waiting got that host's job (not a new one). */
  coalesced: number;
  refused: number;
  /** The hub's socket failed or went away mid-request (it was being killed). */
  cutOff: number;
  /** Refusals by error code. */
  refusedBy: Record<string, number>;
}

const REQUEST_TIMEOUT_MS = 15_000;

export class TriggerLoad {
  /** Every accepted job id (once, unless a hub dispatched one id twice). */
  readonly accepted: string[] = [];
  readonly counts: TriggerCounts = { sent: 0, accepted: 0, coalesced: 0, refused: 0, cutOff: 0, refusedBy: {} };
  private readonly ids = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: TriggerLoadOptions) {}

  resume(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.one(), Math.max(1, Math.round(1000 / this.o.perSecond)));
  }

  /** No new triggers; resolves once the ones in flight have answered (or timed out). */
  async pause(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.inFlight]);
  }

  private one(): void {
    const sockets = this.o.sockets();
    if (sockets.length === 0) return;
    const socket = sockets[Math.floor(this.o.random() * sockets.length)]!;
    const host = this.o.hosts[Math.floor(this.o.random() * this.o.hosts.length)]!;
    const queue = this.o.random() < 0.5;
    this.counts.sent++;
    const p = this.request(socket, host, queue).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async request(socket: string, host: string, queue: boolean): Promise<void> {
    let answered = false;
    try {
      await adminRequest(socket, { op: 'trigger', hosts: [host], all: false, tags: [], action: 'switch', queue, follow: false }, (e) => {
        if (e.ev === 'accepted') {
          answered = true;
          const id = String(e['jobId']);
          // Hubs queueing at once for one offline host share its one job (hub/holders queuedJobId): the same id, once.
          // A job id dispatched twice stays in the list twice: the checker reports it.
          const repeat = this.ids.has(id) && e['disposition'] !== 'dispatched';
          if (e['disposition'] === 'coalesced' || repeat) { this.counts.coalesced++; return false; }
          this.ids.add(id);
          this.accepted.push(id);
          this.counts.accepted++;
        } else if (e.ev === 'rejected' || e.ev === 'error') {
          answered = true;
          this.counts.refused++;
          const code = String(e['code'] ?? e.ev);
          this.counts.refusedBy[code] = (this.counts.refusedBy[code] ?? 0) + 1;
        }
        return e.ev === 'done';
      }, REQUEST_TIMEOUT_MS);
    } catch {
      // The socket is gone (its hub was killed): nothing was accepted unless it said so above.
    }
    if (!answered) this.counts.cutOff++;
  }
}
