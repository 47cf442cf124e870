// hub.json "limits": how the hub admits unauthenticated connections
// (admission.ts). Every field has a default, listed with what happens when it
// is hit in docs/security.md ("Limits"); the model is sshd's (LoginGraceTime,
// MaxStartups start:rate:full, PerSourceMaxStartups, PerSourcePenalties),
// adapted to a hub whose clients are agents that retry with backoff.
import { BentoError } from '../../common/protocol/errors.js';
import { parseCidr } from './source-key.js';

export interface AdmissionLimits {
  /** Accept -> the client's SSH identification line (WebSocket: TLS and the HTTP upgrade included). */
  bannerTimeoutMs: number;
  /** Accept -> authenticated: waiting for a slot, key exchange and authentication together. */
  handshakeTimeoutMs: number;
  /** Key exchanges in progress at once (CPU on the hub's one thread; see docs/performance.md). */
  maxHandshakes: number;
  /** A handshake holds its slot at most this long; a slower one goes on without blocking the next. */
  handshakeSlotMs: number;
  /** Connections with a banner waiting for a slot; at this many, the largest source's oldest is dropped. */
  maxQueued: number;
  /** From this many waiting, newcomers from sources above their fair share are dropped at random. */
  earlyDropQueued: number;
  /** Drop probability (percent) at earlyDropQueued, rising linearly to 100 at maxQueued. */
  earlyDropPercent: number;
  /** Unauthenticated connections in all (banner, waiting, in handshake). */
  maxUnauthenticated: number;
  /** Unauthenticated connections per source (an IPv4 address, an IPv6 /64), plus one per host connected from it now or in the last hour. */
  perSourceUnauthenticated: number;
  /** Failures (timeouts, garbage, refused authentication) per penaltyWindowMs that get a source refused. */
  penaltyFailures: number;
  penaltyWindowMs: number;
  /** The first refusal lasts this long; each further one doubles, up to penaltyMaxMs. */
  penaltyMs: number;
  penaltyMaxMs: number;
  /** Sources (CIDR or address) with no per-source limit and no penalties: a reverse proxy's or tor's address. */
  exempt: string[];
}

export const DEFAULT_LIMITS: Readonly<AdmissionLimits> = Object.freeze({
  bannerTimeoutMs: 5000,
  handshakeTimeoutMs: 10_000,
  maxHandshakes: 64,
  handshakeSlotMs: 2000,
  maxQueued: 1024,
  earlyDropQueued: 512,
  earlyDropPercent: 30,
  maxUnauthenticated: 4096,
  perSourceUnauthenticated: 16,
  penaltyFailures: 10,
  penaltyWindowMs: 60_000,
  penaltyMs: 5000,
  penaltyMaxMs: 300_000,
  exempt: [],
});

/** [min, max] of each numeric limit. */
const RANGES: Record<Exclude<keyof AdmissionLimits, 'exempt'>, [number, number]> = {
  bannerTimeoutMs: [100, 600_000],
  handshakeTimeoutMs: [100, 600_000],
  maxHandshakes: [1, 4096],
  handshakeSlotMs: [100, 600_000],
  maxQueued: [1, 65_536],
  earlyDropQueued: [1, 65_536],
  earlyDropPercent: [0, 100],
  maxUnauthenticated: [1, 65_536],
  perSourceUnauthenticated: [1, 65_536],
  penaltyFailures: [1, 1_000_000],
  penaltyWindowMs: [1000, 86_400_000],
  penaltyMs: [0, 86_400_000],
  penaltyMaxMs: [0, 86_400_000],
};

/** hub.json "limits" (absent = all defaults); unknown keys and bad values are a CONFIG_INVALID naming the field. */
export function validateLimits(raw: unknown, source: string): AdmissionLimits {
  const bad = (msg: string): never => { throw new BentoError('CONFIG_INVALID', `${source}: "limits": ${msg}`); };
  if (raw === undefined) return { ...DEFAULT_LIMITS, exempt: [] };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('must be an object, e.g. { "perSourceUnauthenticated": 64 }');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!Object.prototype.hasOwnProperty.call(DEFAULT_LIMITS, k)) bad(`unknown setting "${k}" (known: ${Object.keys(DEFAULT_LIMITS).join(', ')})`);
  }
  const out: AdmissionLimits = { ...DEFAULT_LIMITS, exempt: [] };
  for (const [k, [min, max]] of Object.entries(RANGES) as Array<[keyof typeof RANGES, [number, number]]>) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`"${k}" must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
    out[k] = v as number;
  }
  if (o['exempt'] !== undefined) {
    const ex = o['exempt'];
    if (!Array.isArray(ex) || ex.length > 1024) bad('"exempt" must be a list of addresses or CIDRs, e.g. ["127.0.0.1/32"]');
    for (const c of ex as unknown[]) {
      if (typeof c !== 'string' || !parseCidr(c)) bad(`"exempt": ${JSON.stringify(c)} is not an address or CIDR (e.g. "10.1.0.0/16", "2001:db8::/48")`);
    }
    out.exempt = [...(ex as string[])];
  }
  if (out.bannerTimeoutMs > out.handshakeTimeoutMs) bad(`"bannerTimeoutMs" (${out.bannerTimeoutMs}) must not exceed "handshakeTimeoutMs" (${out.handshakeTimeoutMs})`);
  if (out.earlyDropQueued > out.maxQueued) bad(`"earlyDropQueued" (${out.earlyDropQueued}) must not exceed "maxQueued" (${out.maxQueued})`);
  if (out.penaltyMs > out.penaltyMaxMs) bad(`"penaltyMs" (${out.penaltyMs}) must not exceed "penaltyMaxMs" (${out.penaltyMaxMs})`);
  return out;
}
