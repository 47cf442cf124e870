// hub.json "limits", the admission part: how the hub admits unauthenticated
// connections (admission.ts). hub/fleet/limits.ts combines it with the other
// parts into the one "limits" section. Every field has a default, listed with
// what happens when it is hit in docs/security.md ("Limits"); the model is sshd's (LoginGraceTime,
// MaxStartups start:rate:full, PerSourceMaxStartups, PerSourcePenalties),
// adapted to a hub whose clients are agents that retry with backoff.
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
export const ADMISSION_RANGES: Record<Exclude<keyof AdmissionLimits, 'exempt'>, [number, number]> = {
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

/** "exempt": a list of addresses or CIDRs; `bad` throws. */
export function validateExempt(ex: unknown, bad: (msg: string) => never): string[] {
  if (!Array.isArray(ex) || ex.length > 1024) bad('"exempt" must be a list of addresses or CIDRs, e.g. ["127.0.0.1/32"]');
  for (const c of ex as unknown[]) {
    if (typeof c !== 'string' || !parseCidr(c)) bad(`"exempt": ${JSON.stringify(c)} is not an address or CIDR (e.g. "10.1.0.0/16", "2001:db8::/48")`);
  }
  return [...(ex as string[])];
}

/** Cross-field rules of the admission limits; `bad` throws. */
export function checkAdmissionLimits(out: AdmissionLimits, bad: (msg: string) => never): void {
  if (out.bannerTimeoutMs > out.handshakeTimeoutMs) bad(`"bannerTimeoutMs" (${out.bannerTimeoutMs}) must not exceed "handshakeTimeoutMs" (${out.handshakeTimeoutMs})`);
  if (out.earlyDropQueued > out.maxQueued) bad(`"earlyDropQueued" (${out.earlyDropQueued}) must not exceed "maxQueued" (${out.maxQueued})`);
  if (out.penaltyMs > out.penaltyMaxMs) bad(`"penaltyMs" (${out.penaltyMs}) must not exceed "penaltyMaxMs" (${out.penaltyMaxMs})`);
}
