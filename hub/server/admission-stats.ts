// What the admission gate did, as counts the metrics endpoint exposes
// (hub/metrics/admission-metrics.ts). The gate starts counting before the
// metrics endpoint exists, so an observer first gets the totals so far.
export type RefuseReason = 'penalised' | 'per-source' | 'full';
export type DropReason = 'garbage' | 'early-drop' | 'queue-full' | 'evicted';
export type TimeoutStage = 'banner' | 'queue' | 'handshake';
export type FailReason = 'auth-failed' | 'no-auth' | 'protocol-error';

export type AdmissionEvent =
  /** Closed at accept, before reading a byte. */
  | { kind: 'refused'; reason: RefuseReason }
  /** Accepted, then closed by policy: not SSH, or dropped from the wait queue. */
  | { kind: 'dropped'; reason: DropReason }
  | { kind: 'timed-out'; stage: TimeoutStage }
  /** Ended by the peer without authenticating, after trying (counted toward penalties). */
  | { kind: 'failed'; reason: FailReason }
  /** A source just earned a penalty. */
  | { kind: 'penalised' };

export type AdmissionObserver = (e: AdmissionEvent, n: number) => void;

export class AdmissionStats {
  private readonly totals = new Map<string, { event: AdmissionEvent; n: number }>();
  private observer: AdmissionObserver | null = null;

  record(e: AdmissionEvent): void {
    const k = JSON.stringify(e);
    const cur = this.totals.get(k);
    if (cur) cur.n++;
    else this.totals.set(k, { event: e, n: 1 });
    this.observer?.(e, 1);
  }

  /** Every event so far (with its count), then each new one as it happens. One observer. */
  observe(fn: AdmissionObserver): void {
    for (const { event, n } of this.totals.values()) fn(event, n);
    this.observer = fn;
  }

  /** Total for one event (tests, logs). */
  total(e: AdmissionEvent): number {
    return this.totals.get(JSON.stringify(e))?.n ?? 0;
  }
}
