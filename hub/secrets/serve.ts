// The secrets subsystem on the hub: an authenticated agent opens
// SECRETS_SUBSYSTEM and gets exactly one JSON line, the bundle of the host it
// authenticated as (never a name it chooses), then the channel closes.
// Logged: host, version, file count. Never contents or file data.
import type { ServerChannel } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import { readSecretBundle, secretsDirFor } from './bundle.js';

export interface SecretsServiceOptions {
  fleetDir: string;
  /** hub.json "secretsDir" (DIR/NAME/), or null for hosts/NAME/secrets/. */
  root: string | null;
  log: Logger;
}

export async function serveSecrets(host: string, ch: ServerChannel, o: SecretsServiceOptions): Promise<void> {
  ch.on('error', () => {});
  try {
    const bundle = await readSecretBundle(secretsDirFor(o.fleetDir, host, o.root));
    ch.end(`${JSON.stringify({ ok: true, ...bundle })}\n`);
    o.log.info({ host, version: bundle.version, files: bundle.files.length }, 'secrets delivered');
  } catch (err) {
    const message = (err as Error).message;
    ch.end(`${JSON.stringify({ ok: false, error: message })}\n`);
    o.log.warn({ host, err: message }, 'secrets not delivered');
  }
}
