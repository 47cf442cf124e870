// Input generation for protocol-fuzz.test.ts: a seeded PRNG (mulberry32, so
// a seed reproduces a run on any machine), a corpus of valid messages of
// every kind, and mutators for JSON values and for raw bytes.

export interface Rng {
  /** [0, 1) */
  next(): number;
  /** [0, n) */
  int(n: number): number;
  chance(p: number): boolean;
  pick<T>(a: readonly T[]): T;
}

export function rng(seed: number): Rng {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * Math.max(0, n));
  return { next, int, chance: (p) => next() < p, pick: (a) => a[int(a.length)]! };
}

const JOB = 'j-abcdefgh1234';
const PATH = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web1-24.05';

/** One valid example of every message: agent -> hub, hub -> agent, admin requests. */
export const corpus: readonly unknown[] = [
  {
    type: 'hello', protocol: 1, name: 'web1', agentVersion: '0.1.0', system: PATH, generation: 42, configHash: 'abc123',
    capabilities: ['prebuilt', 'ssh-keepalive'], runningJobId: JOB, unreported: [JOB], via: 'socks5h://127.0.0.1:9050 -> ssh://x.onion:2222',
    rebootJobId: JOB, rebootRequestedAt: '2024-05-01T10:00:00.000Z', rebootMethod: 'kexec', rebootExpected: PATH,
  },
  { type: 'hello', protocol: 1, name: 'web1', agentVersion: 'x', system: null, generation: null, configHash: null, capabilities: [] },
  { type: 'heartbeat', seq: 7 },
  { type: 'job.started', jobId: JOB, action: 'switch' },
  { type: 'job.output', jobId: JOB, stream: 'stderr', data: 'building the system configuration...\n' },
  {
    type: 'job.end', jobId: JOB, action: 'boot', outcome: 'rolled-back', exitCode: null, startedAt: '2024-05-01T10:00:00.000Z',
    durationMs: 1234, reason: 'the hub was unreachable after the switch', system: PATH, replayed: true, configHash: null,
  },
  { type: 'job.guarded', jobId: JOB, withinMs: 90_000 },
  { type: 'welcome', protocol: 1, hubVersion: '0.1.0', heartbeatMs: 25_000, keepalive: 'ssh' },
  { type: 'job.start', jobId: JOB, action: 'switch', storePath: PATH, configHash: 'abc123' },
  { type: 'job.ack', jobId: JOB },
  { type: 'error', code: 'REPLACED', message: 'a newer connection from this host replaced this one' },
  { op: 'ping' },
  { op: 'list' },
  { op: 'trigger', hosts: ['web1', 'web2'], all: false, tags: ['web'], action: 'dry-activate', queue: true, follow: true, prebuilt: true },
  { op: 'proxy', host: 'web1', port: 22 },
  { op: 'status' },
];

const STRINGS = [
  '', 'x', 'switch', 'hello', 'job.output', 'agent', '__proto__', 'constructor', 'toString', 'hasOwnProperty', JOB, PATH,
  '../../etc/passwd', '/nix/store/../x', 'a\nb', '\u0000', '\ud800', '😀'.repeat(20), 'é', 'x'.repeat(70), 'y'.repeat(5000),
  'SSH-2.0-x', '{"type":"hello"}', '1e309', 'NaN', 'null',
];
const NUMBERS = [0, -0, 1, -1, 0.5, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 4_294_967_296, 86_400_001, 3_600_001, 99, 1001];

/** Any JSON value, up to `depth` levels of nesting (deep nesting now and then). */
export function randomValue(r: Rng, depth = 3): unknown {
  switch (r.int(depth > 0 ? 9 : 6)) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.pick(NUMBERS);
    case 3: return r.int(1000) - 500;
    case 4: return r.pick(STRINGS);
    case 5: return randomString(r, r.int(40));
    case 6: return Array.from({ length: r.int(5) }, () => randomValue(r, depth - 1));
    case 7: return Object.fromEntries(Array.from({ length: r.int(5) }, () => [r.pick(STRINGS), randomValue(r, depth - 1)]));
    default: {
      // Nested arrays a few thousand deep (still one line under the limit).
      let v: unknown = 1;
      for (let i = r.int(3000); i > 0; i--) v = [v];
      return v;
    }
  }
}

function randomString(r: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(r.chance(0.8) ? 32 + r.int(95) : r.int(0x10000));
  return s;
}

/** A copy of `v` with 1-4 changes: fields replaced, removed or added, the type changed, or the whole thing swapped. */
export function mutateValue(r: Rng, v: unknown): unknown {
  if (r.chance(0.05)) return randomValue(r);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  for (let n = 1 + r.int(4); n > 0; n--) {
    const keys = Object.keys(o);
    switch (r.int(6)) {
      case 0: if (keys.length) o[r.pick(keys)] = randomValue(r); break;
      case 1: if (keys.length) delete o[r.pick(keys)]; break;
      case 2: o[r.pick(STRINGS)] = randomValue(r); break;
      case 3: o['type'] = r.pick(['hello', 'heartbeat', 'job.started', 'job.output', 'job.end', 'job.guarded', 'welcome', 'job.start', 'job.ack', 'error', randomString(r, 8)]); break;
      case 4: o['op'] = r.pick(['ping', 'list', 'trigger', 'proxy', 'status', '__proto__', randomString(r, 6)]); break;
      default: if (keys.length) { const k = r.pick(keys); o[k] = mutateValue(r, o[k]); }
    }
  }
  // An own "__proto__" key, as JSON.parse makes one.
  if (r.chance(0.05)) {
    const rest = JSON.stringify(o).slice(1);
    return JSON.parse(`{"__proto__":{"type":"hello","op":"ping"}${rest === '}' ? '' : ','}${rest}`);
  }
  return o;
}

export function randomBytes(r: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r.chance(0.1) ? 0x0a : r.int(256);
  return b;
}

/** Flip, insert, delete, duplicate or truncate bytes of `b`. */
export function mutateBytes(r: Rng, b: Buffer): Buffer {
  let out = Buffer.from(b);
  for (let n = 1 + r.int(4); n > 0; n--) {
    const at = r.int(out.length + 1);
    switch (r.int(5)) {
      case 0: if (out.length) out[Math.min(at, out.length - 1)] = r.int(256); break;
      case 1: out = Buffer.concat([out.subarray(0, at), randomBytes(r, 1 + r.int(8)), out.subarray(at)]); break;
      case 2: out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + r.int(8))]); break;
      case 3: out = Buffer.concat([out, out.subarray(at)]); break;
      default: out = out.subarray(0, at);
    }
  }
  return out;
}
