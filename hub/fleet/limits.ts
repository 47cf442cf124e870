// hub.json "limits": every limit the hub enforces on what peers send it, in
// one section, validated by one table. Each part keeps its own settings next
// to the code that enforces them (defaults, [min, max], cross-field rules):
//   admission  hub/server/admission-limits.ts  unauthenticated connections
//   session    hub/server/inbound-gate.ts      what one agent may have in flight
//   connection hub/server/conn-limits.ts       channels, forwards, hello deadline, connections per host
//   adoption   hub/jobs/adopt-limits.ts        jobs recorded on a host's word
//   output     hub/store/output-cap.ts         stored job output per job and host
//   followers  hub/events/follower.ts          what a reader that falls behind may cost
// docs/security.md ("Limits") lists each with its default and what happens
// when it is hit.
import { BentoError } from '../../common/protocol/errors.js';
import { ADMISSION_RANGES, DEFAULT_LIMITS, checkAdmissionLimits, validateExempt, type AdmissionLimits } from '../server/admission-limits.js';
import { SESSION_DEFAULTS, SESSION_RANGES, type SessionLimits } from '../server/inbound-gate.js';
import { CONN_DEFAULTS, CONN_RANGES, type ConnLimits } from '../server/conn-limits.js';
import { ADOPT_DEFAULTS, ADOPT_RANGES, type AdoptLimits } from '../jobs/adopt-limits.js';
import { OUTPUT_DEFAULTS, OUTPUT_RANGES, checkOutputLimits, type OutputLimits } from '../store/output-cap.js';
import { FOLLOWER_DEFAULTS, FOLLOWER_RANGES, type FollowerLimits } from '../events/follower.js';

export type HubLimits = AdmissionLimits & SessionLimits & ConnLimits & AdoptLimits & OutputLimits & FollowerLimits;

export const DEFAULT_HUB_LIMITS: Readonly<HubLimits> = Object.freeze({
  ...DEFAULT_LIMITS, ...SESSION_DEFAULTS, ...CONN_DEFAULTS, ...ADOPT_DEFAULTS, ...OUTPUT_DEFAULTS, ...FOLLOWER_DEFAULTS, exempt: [],
});

/** [min, max] of every numeric limit. */
const RANGES: Record<Exclude<keyof HubLimits, 'exempt'>, [number, number]> = {
  ...ADMISSION_RANGES, ...SESSION_RANGES, ...CONN_RANGES, ...ADOPT_RANGES, ...OUTPUT_RANGES, ...FOLLOWER_RANGES,
};

/** hub.json "limits" (absent = all defaults); unknown keys and bad values are a CONFIG_INVALID naming the field. */
export function validateLimits(raw: unknown, source: string): HubLimits {
  const bad = (msg: string): never => { throw new BentoError('CONFIG_INVALID', `${source}: "limits": ${msg}`); };
  if (raw === undefined) return { ...DEFAULT_HUB_LIMITS, exempt: [] };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('must be an object, e.g. { "perSourceUnauthenticated": 64 }');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!Object.prototype.hasOwnProperty.call(DEFAULT_HUB_LIMITS, k)) bad(`unknown setting "${k}" (known: ${Object.keys(DEFAULT_HUB_LIMITS).join(', ')})`);
  }
  const out: HubLimits = { ...DEFAULT_HUB_LIMITS, exempt: [] };
  for (const [k, [min, max]] of Object.entries(RANGES) as Array<[keyof typeof RANGES, [number, number]]>) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`"${k}" must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
    out[k] = v as number;
  }
  if (o['exempt'] !== undefined) out.exempt = validateExempt(o['exempt'], bad);
  checkAdmissionLimits(out, bad);
  checkOutputLimits(out, bad);
  return out;
}
