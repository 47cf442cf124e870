// `bento-hub serve`: run the daemon in the foreground until SIGINT/SIGTERM.
import type { CommandSpec } from '../../common/platform/cli.js';
import { createLogger } from '../../common/platform/log.js';
import { capYoungGeneration } from '../../common/platform/young-gen.js';
import { BentoError } from '../../common/protocol/errors.js';
import { isHostPort } from '../fleet/hub-config.js';
import { fleetDir, listenOption, str } from './util.js';

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
    // Before anything is opened: may re-execute this process (same PID) with a smaller young generation.
    capYoungGeneration();
    const log = createLogger({ name: 'bento-hub', level: str(values, 'log-level') });
    // Loaded here, not at the top: the daemon is most of the hub's code, and every other command would load it too.
    const { startHub } = await import('../daemon.js');
    const hub = await startHub({ dir: fleetDir(values), log, listen, wsListen });
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
