// Triggers across hubs (hub/jobs/router.ts): a trigger at any hub for a host
// another hub holds is asked of that hub by NATS request/reply, on a subject
// per hub (<prefix>.hub.<name>.trigger); the holding hub runs it through its
// own scheduler, which is where coalescing (one active + one pending job per
// host) is decided. A host nobody holds is queued here: its queued job's id
// is the same at every hub (holds.ts queuedJobId), so hubs queueing at once
// share one job, and whichever hub the host reaches dispatches it.
//
// The asking hub follows the job on the shared event bus, subscribed before
// it asks (hub/admin/follow.ts). Requests and replies are validated at the
// edge like every other message between hubs (routing-codec.ts); the
// triggers one turn asks of one hub travel as one batch (routing-batch.ts).
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { asBentoError, BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { HostHolders } from '../holders/types.js';
import type { RoutedTrigger, TriggerRequest, TriggerRouter } from '../jobs/router.js';
import { encodeToken, type ClusterNames } from './names.js';
import { TriggerBatcher } from './routing-batch.js';
import { malformed, parseAnswer, parseBatch, parseRequest, refusal, type Answer } from './routing-codec.js';
import { SlotGate } from './slot-gate.js';

export interface ClusterRouterDeps {
  nc: NatsConnection;
  names: ClusterNames;
  hubName: string;
  holders: Pick<HostHolders, 'holder'>;
  /** This hub's own scheduler behind the router (a LocalRouter). */
  local: TriggerRouter;
  /** How long the holding hub may take to answer. */
  timeoutMs: number;
  log: Logger;
}

/** A host may move while a trigger looks for it: ask again, at most this often. */
const MAX_HOPS = 4;
/**
 * Routed triggers of this hub in flight at once (slot-gate.ts): a fan-out to
 * 45,000 hosts asked 30,000 at once and most timed out at the holding hubs.
 */
const ROUTED_IN_FLIGHT = 256;
/** How long a routed trigger may wait for a slot before it is refused (CLUSTER_UNAVAILABLE). */
const SLOT_WAIT_MS = 120_000;

export class ClusterRouter implements TriggerRouter {
  private subs: Subscription[] = [];
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();
  private readonly slots = new SlotGate(ROUTED_IN_FLIGHT);
  private readonly batcher: TriggerBatcher;

  constructor(private readonly d: ClusterRouterDeps) {
    this.batcher = new TriggerBatcher({
      nc: d.nc, timeoutMs: d.timeoutMs, log: d.log,
      subject: (hub, kind) => ClusterRouter.subject(d.names, hub, kind),
    });
  }

  static subject(names: ClusterNames, hub: string, kind: 'batch' | 'single' = 'single'): string {
    return `${names.prefix}.hub.${encodeToken(hub)}.${kind === 'batch' ? 'triggers' : 'trigger'}`;
  }

  /** Answer triggers other hubs route here: one at a time (hubs of the previous version), or batched. */
  start(): void {
    this.subs = [
      this.d.nc.subscribe(ClusterRouter.subject(this.d.names, this.d.hubName, 'single'), {
        callback: (err, msg) => { if (!err) void this.serveOne(msg); },
      }),
      this.d.nc.subscribe(ClusterRouter.subject(this.d.names, this.d.hubName, 'batch'), {
        callback: (err, msg) => { if (!err) void this.serveBatch(msg); },
      }),
    ];
  }

  async trigger(r: TriggerRequest): Promise<RoutedTrigger> {
    for (let hop = 1; ; hop++) {
      const h = this.d.holders.holder(r.host);
      if (!h || h.local) return this.d.local.trigger(r);
      let answer: unknown;
      const release = await this.slots.acquire(SLOT_WAIT_MS);
      if (!release) throw new BentoError('CLUSTER_UNAVAILABLE', `${ROUTED_IN_FLIGHT} routed triggers of this hub were unanswered for ${SLOT_WAIT_MS / 1000} s; not asking hub ${h.hub} for ${r.host}`);
      try {
        answer = await this.batcher.ask(h.hub, r);
      } catch (err) {
        if (hop < MAX_HOPS && this.moved(r.host, h.hub)) continue;
        throw new BentoError('CLUSTER_UNAVAILABLE', `hub ${h.hub} holds ${r.host} but did not answer the trigger: ${(err as Error).message}`, { cause: err });
      } finally {
        release();
      }
      const ok = parseAnswer(answer);
      if ('result' in ok) return ok.result;
      // The host left that hub while we asked: ask wherever it is now.
      if (hop < MAX_HOPS && (ok.code === 'STATE_CONFLICT' || ok.code === 'HOST_OFFLINE' || ok.code === 'CLUSTER_UNAVAILABLE')) {
        await new Promise((res) => setTimeout(res, 100 * hop));
        if (this.moved(r.host, h.hub) || ok.code === 'STATE_CONFLICT') continue;
      }
      throw new BentoError(ok.code, ok.message);
    }
  }

  async close(): Promise<void> {
    for (const sub of this.subs) {
      try { sub.unsubscribe(); } catch { /* connection closed */ }
    }
    this.subs = [];
  }

  private moved(host: string, from: string): boolean {
    return this.d.holders.holder(host)?.hub !== from;
  }

  /** One host's trigger, answered as its own request or as one item of a batch. */
  private async answer(req: TriggerRequest | BentoError): Promise<Answer> {
    if (req instanceof BentoError) return refusal(req);
    try {
      return { result: await this.d.local.trigger(req) };
    } catch (err) {
      const e = asBentoError(err);
      if (e.code === 'INTERNAL') this.d.log.error({ err: e.message }, 'routed trigger failed');
      return refusal(e);
    }
  }

  private async serveOne(msg: Msg): Promise<void> {
    let req: TriggerRequest | BentoError;
    try { req = parseRequest(JSON.parse(this.dec.decode(msg.data))); } catch (err) { req = malformed(err); }
    this.respond(msg, await this.answer(req));
  }

  private async serveBatch(msg: Msg): Promise<void> {
    let reply: unknown;
    try {
      const items = parseBatch(JSON.parse(this.dec.decode(msg.data)));
      reply = { answers: await Promise.all(items.map((req) => this.answer(req))) };
    } catch (err) {
      // The batch itself is unreadable: its sender cannot tell whose it was, and sees a malformed reply.
      reply = refusal(err);
    }
    this.respond(msg, reply);
  }

  private respond(msg: Msg, answer: unknown): void {
    try { msg.respond(this.enc.encode(JSON.stringify(answer))); } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'cannot answer a routed trigger');
    }
  }
}
