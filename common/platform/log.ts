// The one pino logger per process; components take child loggers
// (`logger.child({ component: 'ssh' })`). Logs go to stderr so stdout stays
// clean for command output and --json.
import { pino, destination, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  name: string;
  level?: string;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino({ name: opts.name, level: opts.level ?? process.env['BENTO_LOG_LEVEL'] ?? 'info' }, destination(2));
}

/** A logger that drops everything (CLI commands that only print results). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
