// At most `limit` requests of one kind in flight at once, the rest waiting
// here in order. Used for a hub's bulk JetStream writes (nats-backend.ts) and
// for the triggers it routes to other hubs (routing.ts). Why: a hub's
// requests share one NATS connection, and the server handles a connection's
// messages in order. A fan-out to 45,000 hosts issued some 90,000 job-record
// writes and 30,000 routed triggers at once: attempts timed out in the
// queue (2 s each) and were sent again, adding load; routed triggers timed
// out at the holding hubs (5 s); and the hub's heartbeat waited behind all
// of it, came back after its 6 s lease, and the hub stopped vouching for its
// hosts mid-fan-out (18,314 triggers refused in the 45,000-agent bench). The
// holds store (claims, heartbeats: the fence) never waits here.

export type Release = () => void;

export class SlotGate {
  private inFlight = 0;
  private readonly waiting: Array<(r: Release) => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`slot gate limit must be a positive integer, got ${limit}`);
  }

  /** Requests holding a slot / waiting for one. */
  get stats(): { inFlight: number; waiting: number } {
    return { inFlight: this.inFlight, waiting: this.waiting.length };
  }

  /** A slot (call the Release once the request is answered; a second call does nothing), or null if none came within MS. */
  acquire(ms: number): Promise<Release | null> {
    if (this.inFlight < this.limit) {
      this.inFlight++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve) => {
      const take = (r: Release): void => { clearTimeout(timer); resolve(r); };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(take);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(null);
      }, Math.max(0, ms));
      this.waiting.push(take);
    });
  }

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter: inFlight stays as it is.
      if (next) next(this.releaser());
      else this.inFlight--;
    };
  }
}
