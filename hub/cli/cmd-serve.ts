// `bento-hub serve`: run the daemon in the foreground until SIGINT/SIGTERM.
import type { CommandSpec } from '../../common/platform/cli.js';
import { createLogger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { isHostPort } from '../fleet/hub-config.js';
import { startHub } from '../daemon.js';
import { fleetDir, listenOption, str } from './util.js';

/** A listener that cannot bind gets an error code like every other failure, and names its address. */
export function listenError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.syscall !== 'listen' || typeof e.port !== 'number') return err;
  const at = `${e.address?.includes(':') ? `[${e.address}]` : e.address ?? ''}:${e.port}`;
  const which = 'hub.json "listen" (or --listen), "wsListen" (or --ws-listen), "dashboard.listen" or "metrics.listen"';
  if (e.code === 'EADDRINUSE') return new BentoError('ADDRESS_IN_USE', `${at} is already in use by another program (another hub?): stop it, or choose another port in ${which}`, { cause: err });
  if (e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
    const why = e.code === 'EACCES' ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE' : 'that address is not one of this machine\'s';
    return new BentoError('LISTEN_FAILED', `cannot listen on ${at}: ${why}; change ${which}`, { cause: err });
  }
  return err;
}

export const serveCommand: CommandSpec = {
  name: 'serve',
  usage: 'serve [--dir DIR] [--listen HOST:PORT] [--ws-listen HOST:PORT] [--log-level LEVEL]',
  summary: 'Run the hub daemon: the agents\' SSH endpoint and the admin socket.',
  details: 'Logs are JSON lines (pino) on stderr. SIGINT or SIGTERM stop it cleanly; kill -9 loses nothing acknowledged.',
  options: {
    listen: { type: 'string', arg: 'HOST:PORT', help: 'agent SSH listen address (overrides hub.json "listen")' },
    'ws-listen': { type: 'string', arg: 'HOST:PORT', help: 'WebSocket listen address (overrides hub.json "wsListen")' },
    'log-level': { type: 'string', arg: 'LEVEL', help: 'trace, debug, info (default), warn, error' },
  },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const listen = listenOption(values, 'listen');
    if (listen !== undefined && !isHostPort(listen)) throw new BentoError('USAGE', `--listen must be HOST:PORT, got "${listen}"`);
    const wsListen = listenOption(values, 'ws-listen');
    if (wsListen !== undefined && !isHostPort(wsListen)) throw new BentoError('USAGE', `--ws-listen must be HOST:PORT, got "${wsListen}"`);
    const log = createLogger({ name: 'bento-hub', level: str(values, 'log-level') });
    const hub = await startHub({ dir: fleetDir(values), log, listen, wsListen }).catch((err: unknown) => { throw listenError(err); });
    await new Promise<void>((resolve) => {
      const stop = (sig: string): void => {
        log.info({ signal: sig }, 'stopping');
        hub.stop().then(resolve, resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    return 0;
  },
};
