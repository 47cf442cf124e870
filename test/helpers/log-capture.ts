// A real pino logger whose lines a test can read back, parsed, in order.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../common/platform/log.js';

export interface CapturedLog {
  log: Logger;
  /** Every line logged so far (at LEVEL and above), parsed. */
  lines: () => Array<Record<string, unknown>>;
}

export function captureLog(level: 'debug' | 'info' | 'warn' = 'info'): CapturedLog {
  const out: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { out.push(chunk.toString()); cb(); } });
  return { log: pino({ level }, sink), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}
