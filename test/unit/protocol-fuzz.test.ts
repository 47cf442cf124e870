// Fuzzing the edge of the wire protocol (issue 13, "Also"): thousands of
// random and mutated frames through the control-channel line decoder
// (common/protocol/codec.ts), the message validator (messages.ts, schema.ts)
// and the admin request validator (admin.ts). Seeded and bounded in time:
// every failure names its seed; BENTO_FUZZ_SEED=N reproduces a run exactly
// (BENTO_FUZZ_MS sets the time budget, default 2.5 s per test).
//
// What must hold for any input:
// - the decoder never throws, reports at most one error and nothing after it,
//   never buffers more than its line limit, and emits exactly what a plain
//   reference (split at "\n", JSON.parse) says, however the bytes are chunked;
// - the validators either accept or throw a BentoError with a protocol code;
// - memory stays bounded however small the chunks are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { LineDecoder, MAX_LINE_BYTES } from '../../common/protocol/codec.js';
import { MESSAGE_SCHEMAS, parseMessage } from '../../common/protocol/messages.js';
import { ADMIN_SCHEMAS, parseAdminRequest } from '../../common/protocol/admin.js';
import { BentoError } from '../../common/protocol/errors.js';
import { type Rng, corpus, mutateBytes, mutateValue, randomBytes, rng } from './protocol-fuzz-gen.js';

const SEED = process.env['BENTO_FUZZ_SEED'] !== undefined ? Number(process.env['BENTO_FUZZ_SEED']) : Math.floor(Math.random() * 2 ** 32);
const BUDGET_MS = Number(process.env['BENTO_FUZZ_MS'] ?? 2500);
const PROTOCOL_CODES = new Set(['PROTOCOL_MALFORMED', 'PROTOCOL_UNKNOWN_TYPE', 'PROTOCOL_OVERSIZED']);

/** Run `one(rng, i)` until the budget is spent (at least `min` times); failures carry the seed. */
function fuzz(name: string, min: number, one: (r: Rng, i: number) => void): number {
  const r = rng(SEED);
  const t0 = Date.now();
  let i = 0;
  for (; i < 1_000_000 && (i < min || Date.now() - t0 < BUDGET_MS); i++) {
    try {
      one(r, i);
    } catch (err) {
      throw new Error(`${name}: case ${i} failed (BENTO_FUZZ_SEED=${SEED} reproduces it): ${(err as Error).stack ?? String(err)}`);
    }
  }
  return i;
}

/** One line as encodeLine writes it, for any JSON value (encodeLine takes objects only). */
function lineOf(v: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(v) ?? 'null'}\n`);
}

type Outcome = { values: unknown[]; error: string | null };

/** What the decoder must do with `bytes`, computed the obvious way. */
function reference(bytes: Buffer, max: number): Outcome {
  const values: unknown[] = [];
  let start = 0;
  for (;;) {
    const nl = bytes.indexOf(0x0a, start);
    const line = bytes.subarray(start, nl === -1 ? bytes.length : nl);
    if (line.length > max) return { values, error: 'PROTOCOL_OVERSIZED' };
    if (nl === -1) return { values, error: null };
    start = nl + 1;
    if (line.length === 0 || (line.length === 1 && line[0] === 0x0d)) continue;
    try {
      values.push(JSON.parse(line.toString('utf8')));
    } catch {
      return { values, error: 'PROTOCOL_MALFORMED' };
    }
  }
}

/** Feed `bytes` in random chunks (often single bytes), checking the decoder's invariants after each. */
function decode(r: Rng, bytes: Buffer, max: number): Outcome {
  const out: Outcome = { values: [], error: null };
  let errors = 0;
  const d = new LineDecoder((v) => {
    assert.equal(out.error, null, 'a value after the error');
    out.values.push(v);
  }, (e) => {
    errors++;
    assert.ok(e instanceof BentoError && PROTOCOL_CODES.has(e.code), `unexpected error ${String(e)}`);
    out.error = e.code;
  }, max);
  const tiny = r.chance(0.3);
  for (let at = 0; at < bytes.length;) {
    const n = tiny ? 1 + r.int(3) : 1 + r.int(Math.min(bytes.length, 2 * max + 64));
    const chunk = Buffer.from(bytes.subarray(at, at + n)); // a fresh buffer, as a socket gives
    at += n;
    d.push(chunk);
    assert.ok(d.bufferedBytes <= max, `buffered ${d.bufferedBytes} > ${max}`);
  }
  assert.ok(errors <= 1, `${errors} errors reported`);
  return out;
}

/**
 * A validator may accept or refuse. Refusing means a BentoError with a
 * protocol code, nothing else. Accepting means a message that carries only
 * what was validated: the fields of its kind's schema (types checked), not
 * whatever else the peer put in (an own "__proto__", a value nested
 * thousands deep, megabytes in a field nobody reads).
 */
function validates(fn: () => unknown, tag: 'type' | 'op', schemas: Readonly<Record<string, object>>): void {
  let msg: unknown;
  try {
    msg = fn();
  } catch (err) {
    if (!(err instanceof BentoError) || !PROTOCOL_CODES.has(err.code)) throw new Error(`validator threw ${String(err)}`, { cause: err });
    return;
  }
  const o = msg as Record<string, unknown>;
  const kind = String(o[tag]);
  const allowed = [tag, ...Object.keys(schemas[kind]!)];
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  assert.deepEqual(extra, [], `accepted ${kind} carries fields outside its schema`);
}

function validateAll(v: unknown): void {
  validates(() => parseMessage(v, 'agent'), 'type', MESSAGE_SCHEMAS);
  validates(() => parseMessage(v, 'hub'), 'type', MESSAGE_SCHEMAS);
  validates(() => parseAdminRequest(v), 'op', ADMIN_SCHEMAS);
}

test('fuzz: decoder, random and mutated byte streams in random chunks, against a reference', (t) => {
  const n = fuzz('decoder', 2000, (r) => {
    const max = r.chance(0.5) ? 16 + r.int(512) : MAX_LINE_BYTES;
    const parts: Buffer[] = [];
    for (let k = 1 + r.int(6); k > 0; k--) {
      const pick = r.int(4);
      if (pick === 0) parts.push(randomBytes(r, r.int(300)));
      else if (pick === 1) parts.push(lineOf(mutateValue(r, r.pick(corpus))));
      else if (pick === 2) parts.push(mutateBytes(r, lineOf(r.pick(corpus))));
      else parts.push(lineOf(r.pick(corpus)));
    }
    if (r.chance(0.05)) parts.push(Buffer.alloc(max + 1 + r.int(100), 0x20)); // an oversized line
    const bytes = Buffer.concat(parts);
    const got = decode(r, bytes, max);
    const want = reference(bytes, max);
    // As JSON: assert.deepEqual recurses, and a value may be nested thousands deep.
    assert.equal(JSON.stringify(got), JSON.stringify(want));
    for (const v of got.values) validateAll(v);
  });
  t.diagnostic(`${n} streams, seed ${SEED}`);
});

test('fuzz: message and admin validators, mutated valid messages and random JSON values', (t) => {
  const n = fuzz('validators', 3000, (r) => {
    const v = mutateValue(r, r.pick(corpus));
    validateAll(v);
    // What survives the wire must also survive the validators.
    validateAll(JSON.parse(JSON.stringify(v) ?? 'null'));
  });
  t.diagnostic(`${n} values, seed ${SEED}`);
});

test('fuzz: the unmutated corpus is valid (the fuzzer starts from real messages)', () => {
  const accepts = (f: () => unknown): boolean => { try { f(); return true; } catch { return false; } };
  for (const v of corpus) {
    const ok = [() => parseMessage(v, 'agent'), () => parseMessage(v, 'hub'), () => parseAdminRequest(v)].some(accepts);
    assert.ok(ok, `no validator accepts ${JSON.stringify(v)}`);
  }
});

test('decoder memory stays near its limit however small the chunks (one byte per SSH packet)', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const decoders: LineDecoder[] = [];
  const lineBytes = 60 * 1024;
  const count = 16;
  gc();
  const before = process.memoryUsage();
  for (let k = 0; k < count; k++) {
    const d = new LineDecoder(() => undefined, () => undefined);
    for (let i = 0; i < lineBytes; i++) d.push(Buffer.from([0x61]));
    decoders.push(d);
  }
  gc();
  const after = process.memoryUsage();
  const grew = (after.heapUsed + after.arrayBuffers) - (before.heapUsed + before.arrayBuffers);
  const perDecoder = grew / count;
  // The bytes themselves are 60 KiB; allow twice that plus slack, not a hundred times.
  assert.ok(perDecoder < 3 * lineBytes, `each decoder holding a ${lineBytes}-byte partial line retains ${Math.round(perDecoder / 1024)} KiB`);
  assert.equal(decoders.length, count);
});
