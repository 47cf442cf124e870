// Triggers across hubs (hub/jobs/router.ts): a trigger at any hub for a host
// another hub holds is asked of that hub by NATS request/reply, on a subject
// per hub (<prefix>.hub.<name>.trigger); the holding hub runs it through its
// own scheduler, which is where coalescing (one active + one pending job per
// host) is decided. A host nobody holds is queued here: its queued job's id
// is the same at every hub (holds.ts queuedJobId), so hubs queueing at once
// share one job, and whichever hub the host reaches dispatches it.
//
// A request that is not answered in time may still have been taken: the
// holding hub was slow (a store write waiting for a leader election, a
// paused process) and dispatches the job later. So the asking hub never
// calls that a refusal. Each trigger carries ids the asking hub chose once
// (routing-codec.ts: `requestId`, and the job id a new job gets); an
// unanswered request is asked once more with the same ids, which the holding
// hub answers with the first one's job (routed-answers.ts), and if that is
// not answered either, the job records are looked up for the chosen job id;
// failing both, the admin is told TRIGGER_UNCONFIRMED ("it may run"), naming
// the job id and where to look (docs/cluster.md "Routing a trigger").
//
// The asking hub follows the job on the shared event bus, subscribed before
// it asks (hub/admin/follow.ts). Requests and replies are validated at the
// edge like every other message between hubs.
import { randomBytes } from 'node:crypto';
import { ClosedConnectionError, RequestError, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { BentoError } from '../../common/protocol/errors.js';
import { newJobIdBody } from '../../common/protocol/names.js';
import type { Logger } from '../../common/platform/log.js';
import type { HostHolders } from '../holders/types.js';
import type { RoutedTrigger, TriggerRequest, TriggerRouter } from '../jobs/router.js';
import type { JobRecord } from '../store/jobs.js';
import { encodeToken, type ClusterNames } from './names.js';
import { encodeAnswer, encodeRequest, parseReply, parseRequest, type Answer, type RoutedRequest } from './routing-codec.js';
import { RoutedAnswers } from './routed-answers.js';
import { SlotGate } from './slot-gate.js';

export interface ClusterRouterDeps {
  nc: NatsConnection;
  names: ClusterNames;
  hubName: string;
  holders: Pick<HostHolders, 'holder'>;
  /** This hub's own scheduler behind the router (a LocalRouter). */
  local: TriggerRouter;
  /** How long the holding hub may take to answer (and its repeat, once more). */
  timeoutMs: number;
  /** This hub's view of the job records: where the job of an unanswered trigger may show up. */
  jobs: { get(id: string): JobRecord | undefined };
  /** This hub is in touch with NATS (liveness.ts current); absent: always. */
  current?: () => boolean;
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
/**
 * Answers kept for repeats (routed-answers.ts): a minute, or three times the
 * route timeout if longer (a repeat comes one timeout after its request);
 * at most this many, about 10 MB: a fan-out's routed triggers arrive here at
 * some thousands a second, and repeats come within seconds.
 */
const ANSWERS_MAX = 20_000;

/** What asking one hub once came to. */
type Asked = { answer: unknown } | { lost: Error } | { unsent: Error };

export class ClusterRouter implements TriggerRouter {
  private sub: Subscription | null = null;
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();
  private readonly slots = new SlotGate(ROUTED_IN_FLIGHT);
  private readonly answers: RoutedAnswers<Answer>;

  constructor(private readonly d: ClusterRouterDeps) {
    this.answers = new RoutedAnswers({ ttlMs: Math.max(60_000, 3 * d.timeoutMs), max: ANSWERS_MAX });
  }

  static subject(names: ClusterNames, hub: string): string {
    return `${names.prefix}.hub.${encodeToken(hub)}.trigger`;
  }

  /** Answer triggers other hubs route here. */
  start(): void {
    this.sub = this.d.nc.subscribe(ClusterRouter.subject(this.d.names, this.d.hubName), {
      callback: (err, msg) => { if (!err) void this.serve(msg); },
    });
  }

  async trigger(r: TriggerRequest): Promise<RoutedTrigger> {
    // Chosen once, kept for the repeat and every hop: a hub that took the first request knows the second.
    const routed: RoutedRequest = { req: { ...r, jobId: r.jobId ?? newJobIdBody() }, requestId: randomBytes(12).toString('base64url') };
    /** Hubs that did not answer a request of this trigger: any of them may have taken it. */
    const silent = new Set<string>();
    try {
      return await this.route(routed, silent);
    } catch (err) {
      if (silent.size === 0) throw err;
      return this.unconfirmed(routed.req, silent, err as Error);
    }
  }

  async close(): Promise<void> {
    try { this.sub?.unsubscribe(); } catch { /* connection closed */ }
    this.sub = null;
  }

  private async route(routed: RoutedRequest, silent: Set<string>): Promise<RoutedTrigger> {
    const { req } = routed;
    for (let hop = 1; ; hop++) {
      const h = this.d.holders.holder(req.host);
      if (!h || h.local) return this.d.local.trigger(req);
      let asked = await this.ask(h.hub, routed);
      if ('lost' in asked) {
        silent.add(h.hub);
        if (hop < MAX_HOPS && this.moved(req.host, h.hub)) continue; // same ids there: a job A did record is found by its id
        this.d.log.warn({ host: req.host, hub: h.hub, jobId: req.jobId, timeoutMs: this.d.timeoutMs }, 'the holding hub did not answer a routed trigger in time; asking once more with the same request id');
        asked = await this.ask(h.hub, routed);
      }
      if ('unsent' in asked || 'lost' in asked) {
        const err = 'unsent' in asked ? asked.unsent : asked.lost;
        if (hop < MAX_HOPS && this.moved(req.host, h.hub)) continue;
        throw new BentoError('CLUSTER_UNAVAILABLE', `hub ${h.hub} holds ${req.host} but did not answer the trigger: ${err.message}`, { cause: err });
      }
      const ok = parseReply(asked.answer, routed.requestId!);
      // It knew the id: its answer is the first request's too (a job it took, or a refusal that started nothing).
      if (ok.knew) silent.delete(h.hub);
      if ('result' in ok) return ok.result;
      // The host left that hub while we asked: ask wherever it is now.
      if (hop < MAX_HOPS && (ok.code === 'STATE_CONFLICT' || ok.code === 'HOST_OFFLINE' || ok.code === 'CLUSTER_UNAVAILABLE')) {
        await new Promise((res) => setTimeout(res, 100 * hop));
        if (this.moved(req.host, h.hub) || ok.code === 'STATE_CONFLICT') continue;
      }
      throw new BentoError(ok.code, ok.message);
    }
  }

  /** Ask HUB once. `lost`: the request may have reached it (a timeout); `unsent`: it did not. */
  private async ask(hub: string, routed: RoutedRequest): Promise<Asked> {
    // Not in touch with NATS: a request would wait in the client's buffer and could reach the
    // holding hub after the admin was told; refused before anything is sent (docs/cluster.md, "NATS entirely unreachable").
    if (this.d.current && !this.d.current()) {
      throw new BentoError('CLUSTER_UNAVAILABLE', `hub ${this.d.hubName} is not in touch with NATS; it cannot ask hub ${hub}, which holds ${routed.req.host}`);
    }
    const release = await this.slots.acquire(SLOT_WAIT_MS);
    if (!release) throw new BentoError('CLUSTER_UNAVAILABLE', `${ROUTED_IN_FLIGHT} routed triggers of this hub were unanswered for ${SLOT_WAIT_MS / 1000} s; not asking hub ${hub} for ${routed.req.host}`);
    try {
      const reply = await this.d.nc.request(ClusterRouter.subject(this.d.names, hub), this.enc.encode(encodeRequest(routed)), { timeout: this.d.timeoutMs });
      return { answer: JSON.parse(this.dec.decode(reply.data)) };
    } catch (err) {
      const e = err as Error;
      const unsent = (err instanceof RequestError && err.isNoResponders()) || err instanceof ClosedConnectionError;
      return unsent ? { unsent: e } : { lost: e };
    } finally {
      release();
    }
  }

  /** Every hub in SILENT may have taken the trigger: its job, if the records show it, else TRIGGER_UNCONFIRMED. */
  private unconfirmed(req: TriggerRequest, silent: Set<string>, err: Error): RoutedTrigger {
    const hubs = [...silent].join(', ');
    const rec = this.d.jobs.get(req.jobId!);
    if (rec && rec.host === req.host) {
      this.d.log.info({ host: req.host, hub: hubs, jobId: rec.id, state: rec.state }, 'an unanswered routed trigger\'s job is in the job records: it was taken');
      return { host: req.host, jobId: rec.id, disposition: rec.state === 'queued' ? 'queued' : 'dispatched', action: rec.action, offline: this.d.holders.holder(req.host) === null, hub: rec.hub ?? [...silent][0]! };
    }
    this.d.log.warn({ host: req.host, hub: hubs, jobId: req.jobId, err: err.message }, 'a routed trigger is unconfirmed: the holding hub did not answer, and may still run it');
    throw new BentoError('TRIGGER_UNCONFIRMED', `hub ${hubs} did not answer the trigger of ${req.host} in time (${this.d.timeoutMs / 1000} s, and again for its repeat) and may still have taken it: `
      + `then it runs as job ${req.jobId}, or joins the job already queued for ${req.host}. Check \`bento-hub job ${req.jobId}\` or \`bento-hub status ${req.host}\` before triggering again (${err.message})`, { cause: err });
  }

  private moved(host: string, from: string): boolean {
    return this.d.holders.holder(host)?.hub !== from;
  }

  private async serve(msg: Msg): Promise<void> {
    let requestId: string | undefined;
    let answer: Answer;
    try {
      const routed = parseRequest(JSON.parse(this.dec.decode(msg.data)));
      requestId = routed.requestId;
      // Looked up and kept before the first await: a repeat that arrives while the first is handled waits for its answer.
      const key = requestId ? `${requestId} ${routed.req.host}` : null;
      let pending = key ? this.answers.get(key) : undefined;
      if (!pending) {
        pending = this.answer(routed.req);
        if (key) this.answers.put(key, pending, (a) => 'result' in a);
      }
      answer = await pending;
    } catch (err) {
      // Only the request's parsing throws here (answer() turns refusals into answers).
      answer = err instanceof BentoError ? { error: { code: err.code, message: err.message } } : { error: { code: 'PROTOCOL_MALFORMED', message: `routed trigger: ${(err as Error).message}` } };
    }
    try { msg.respond(this.enc.encode(encodeAnswer(answer, requestId))); } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'cannot answer a routed trigger');
    }
  }

  /** This hub's scheduler's answer; a refusal is an answer too (never a rejection). */
  private async answer(req: TriggerRequest): Promise<Answer> {
    try {
      return { result: await this.d.local.trigger(req) };
    } catch (err) {
      const e = err instanceof BentoError ? err : new BentoError('INTERNAL', (err as Error).message);
      if (e.code === 'INTERNAL') this.d.log.error({ err: e.message }, 'routed trigger failed');
      return { error: { code: e.code, message: e.message } };
    }
  }
}
