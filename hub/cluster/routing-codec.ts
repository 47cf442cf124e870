// The messages of routed triggers (routing.ts), validated at the edge: they
// come from other hubs over the network. Two request shapes share one answer
// per host:
//   one trigger   <prefix>.hub.<name>.trigger   TriggerRequest -> Answer
//   a batch       <prefix>.hub.<name>.triggers  { batch: TriggerRequest[] } -> { answers: Answer[] }
// The batch is what a fan-out sends (routing-batch.ts); the single subject
// stays for hubs of the previous version during a rolling upgrade.
import { BentoError, isErrorCode, type ErrorCode } from '../../common/protocol/errors.js';
import { ACTIONS } from '../../common/protocol/messages.js';
import { isHostName, isJobId } from '../../common/protocol/names.js';
import { isStorePath } from '../../common/protocol/store-path.js';
import type { RoutedTrigger, TriggerRequest } from '../jobs/router.js';

/** One host's answer: the holding hub's result, or its refusal. */
export type Answer = { result: RoutedTrigger } | { error: { code: ErrorCode; message: string } };

/** What one batch may carry, at the sender and (checked again) at the receiver. */
export const MAX_BATCH = 128;

function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BentoError('PROTOCOL_MALFORMED', 'not an object');
  return v as Record<string, unknown>;
}

/** A trigger another hub routed here (validated: it is input from the network). */
export function parseRequest(v: unknown): TriggerRequest {
  const o = obj(v);
  if (!isHostName(o['host'])) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad host');
  if (!(ACTIONS as readonly unknown[]).includes(o['action'])) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad action');
  if (typeof o['queue'] !== 'boolean') throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad queue');
  const req: TriggerRequest = { host: o['host'], action: o['action'] as TriggerRequest['action'], queue: o['queue'] };
  if (o['jobId'] !== undefined) {
    if (!isJobId(o['jobId'])) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad jobId');
    req.jobId = o['jobId'];
  }
  if (o['prebuilt'] !== undefined) {
    const p = obj(o['prebuilt']);
    if (!isStorePath(p['storePath'])) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad storePath');
    const hash = p['configHash'];
    if (hash !== undefined && (typeof hash !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(hash))) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad configHash');
    req.prebuilt = { storePath: p['storePath'] as string, ...(hash !== undefined ? { configHash: hash as string } : {}) };
  }
  return req;
}

/**
 * A batch another hub routed here: its items, each either a request or the
 * reason it is not one (a malformed item is refused alone, not its batch).
 */
export function parseBatch(v: unknown): Array<TriggerRequest | BentoError> {
  const items = obj(v)['batch'];
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_BATCH) {
    throw new BentoError('PROTOCOL_MALFORMED', `routed triggers: batch must be an array of 1 to ${MAX_BATCH} requests`);
  }
  return items.map((item) => {
    try { return parseRequest(item); } catch (err) { return malformed(err); }
  });
}

/** What a request that could not be read is refused with (JSON.parse's error, or parseRequest's). */
export function malformed(err: unknown): BentoError {
  return err instanceof BentoError ? err : new BentoError('PROTOCOL_MALFORMED', `routed trigger: ${(err as Error).message}`);
}

/** A refusal as it travels (the same shape in a single reply and in a batch). */
export function refusal(err: unknown): Answer {
  const e = malformed(err);
  return { error: { code: e.code, message: e.message } };
}

/** One host's answer from the holding hub (a single reply, or one item of a batch's). */
export function parseAnswer(v: unknown): { result: RoutedTrigger } | { code: ErrorCode; message: string } {
  const o = obj(v);
  if (o['error'] !== undefined) {
    const e = obj(o['error']);
    return { code: isErrorCode(e['code']) ? e['code'] : 'INTERNAL', message: typeof e['message'] === 'string' ? e['message'].slice(0, 4096) : 'the holding hub refused the trigger' };
  }
  const r = obj(o['result']);
  if (!isHostName(r['host']) || !isJobId(r['jobId']) || !['dispatched', 'coalesced', 'queued'].includes(r['disposition'] as string)
    || !(ACTIONS as readonly unknown[]).includes(r['action']) || typeof r['offline'] !== 'boolean' || !isHostName(r['hub'])) {
    throw new BentoError('PROTOCOL_MALFORMED', 'the holding hub answered a trigger with a malformed reply');
  }
  return { result: r as unknown as RoutedTrigger };
}

/** A batch's answers, one per request sent, in order (the count is checked: a short reply would leave hosts unanswered). */
export function parseBatchReply(v: unknown, sent: number): unknown[] {
  const o = obj(v);
  // The holding hub could not read the batch at all (refusal()): its reason, not a count mismatch.
  if (o['error'] !== undefined && o['answers'] === undefined) {
    const e = parseAnswer(o);
    if ('code' in e) throw new BentoError(e.code, `the holding hub refused the batch: ${e.message}`);
  }
  const answers = o['answers'];
  if (!Array.isArray(answers) || answers.length !== sent) {
    throw new BentoError('PROTOCOL_MALFORMED', `the holding hub answered ${sent} routed triggers with ${Array.isArray(answers) ? answers.length : 'no'} answers`);
  }
  return answers;
}
