// Routed triggers to one hub travel together. A fan-out (`trigger --all`) at
// one hub of three asks the other two for two thirds of the fleet; one NATS
// request per host cost each job a request and a reply through the servers
// and their routes, and the asking hub's request bookkeeping. Requests asked
// in one event-loop turn for the same hub go out as one batch (at most
// MAX_BATCH; routing-codec.ts) and each caller gets its own host's answer,
// so a single trigger waits one turn more and nothing else changes for it.
//
// A hub of the previous version does not serve the batch subject: NATS says
// "no responders" at once, and that hub is asked one host at a time for a
// while (rolling upgrades, docs/cluster.md).
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../common/platform/log.js';
import type { TriggerRequest } from '../jobs/router.js';
import { MAX_BATCH, parseBatchReply } from './routing-codec.js';

export interface BatchSenderDeps {
  nc: Pick<NatsConnection, 'request'>;
  /** The subject of one hub's batches, and of its single triggers. */
  subject: (hub: string, kind: 'batch' | 'single') => string;
  timeoutMs: number;
  log: Logger;
}

interface Waiter {
  req: TriggerRequest;
  resolve: (answer: unknown) => void;
  reject: (err: unknown) => void;
}

/** How long a hub that did not serve batches is asked one host at a time before batches are tried again. */
const SINGLE_FOR_MS = 60_000;

function noResponders(err: unknown): boolean {
  const e = err as { isNoResponders?: () => boolean } | null;
  return typeof e?.isNoResponders === 'function' && e.isNoResponders();
}

export class TriggerBatcher {
  private readonly waiting = new Map<string, Waiter[]>();
  private scheduled = false;
  /** Hubs that answered a batch with "no responders", until when they are asked singly. */
  private readonly singleUntil = new Map<string, number>();
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();

  constructor(private readonly d: BatchSenderDeps) {}

  /** HUB's answer for this request (unparsed: the caller validates it), or the transport's error. */
  ask(hub: string, req: TriggerRequest): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let list = this.waiting.get(hub);
      if (!list) this.waiting.set(hub, list = []);
      list.push({ req, resolve, reject });
      if (list.length >= MAX_BATCH) {
        this.waiting.delete(hub);
        void this.send(hub, list);
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = [...this.waiting];
    this.waiting.clear();
    for (const [hub, list] of all) void this.send(hub, list);
  }

  private async send(hub: string, list: Waiter[]): Promise<void> {
    const until = this.singleUntil.get(hub);
    if (until !== undefined && Date.now() < until) return this.sendSingly(hub, list);
    this.singleUntil.delete(hub);
    let answers: unknown[];
    try {
      const body = this.enc.encode(JSON.stringify({ batch: list.map((w) => w.req) }));
      const reply = await this.d.nc.request(this.d.subject(hub, 'batch'), body, { timeout: this.d.timeoutMs });
      answers = parseBatchReply(JSON.parse(this.dec.decode(reply.data)), list.length);
    } catch (err) {
      if (noResponders(err)) {
        this.d.log.info({ hub }, 'hub does not answer batched triggers (an older version?): asking it one host at a time');
        this.singleUntil.set(hub, Date.now() + SINGLE_FOR_MS);
        return this.sendSingly(hub, list);
      }
      for (const w of list) w.reject(err);
      return;
    }
    list.forEach((w, i) => w.resolve(answers[i]));
  }

  private async sendSingly(hub: string, list: Waiter[]): Promise<void> {
    await Promise.all(list.map(async (w) => {
      try {
        const reply = await this.d.nc.request(this.d.subject(hub, 'single'), this.enc.encode(JSON.stringify(w.req)), { timeout: this.d.timeoutMs });
        w.resolve(JSON.parse(this.dec.decode(reply.data)));
      } catch (err) {
        w.reject(err);
      }
    }));
  }
}
