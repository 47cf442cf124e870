// The secrets subsystem on the hub: an authenticated agent opens
// SECRETS_SUBSYSTEM and gets exactly one JSON line, the bundle of the host it
// authenticated as (never a name it chooses), then the channel closes.
// Logged: host, version, file count. Never contents or file data.
//
// What one host may make the hub hold for it here is bounded: each request
// holds the whole bundle (up to ~1.4 MiB) until the agent takes it, and a
// host could open any number of channels with an SSH window of 0 (300 of them
// with a 700 KB bundle took +307 MiB). So at most one request per host is in
// flight (until its channel closes: the agent fetches one at a time and waits
// for the close), others are refused; and the bundle leaves in pieces, each
// only once the agent's window took the one before, within DRAIN_MS, or the
// channel is closed and the bundle dropped.
import type { ServerChannel } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import { readSecretBundle, secretsDirFor, type SecretBundle } from './bundle.js';

/** An honest agent grants a 2 MiB window at once (a bundle is at most ~1.4 MiB): it takes the bundle in milliseconds. */
export const DRAIN_MS = 5000;
const PIECE = 64 * 1024;

export interface SecretsServiceOptions {
  fleetDir: string;
  /** hub.json "secretsDir" (DIR/NAME/), or null for hosts/NAME/secrets/. */
  root: string | null;
  log: Logger;
  /** How long the agent may take to read the bundle (default DRAIN_MS; tests shorten it). */
  drainMs?: number;
}

export class SecretsService {
  /** Hosts with a request in flight (channel not closed yet). */
  private readonly inFlight = new Set<string>();

  constructor(private readonly o: SecretsServiceOptions) {}

  /** HOST asks for its bundle: false (refused) while another of its requests is in flight. */
  request(host: string, accept: () => ServerChannel): boolean {
    if (this.inFlight.has(host)) {
      this.o.log.warn({ host }, 'refused a secrets request: another one of this host is still in flight (at most one at a time)');
      return false;
    }
    this.inFlight.add(host);
    const ch = accept();
    // Flowing (the agent sends nothing worth keeping): ssh2 reports a server channel's close only after its readable end.
    ch.resume();
    ch.once('close', () => this.inFlight.delete(host));
    void serveSecrets(host, ch, this.o);
    return true;
  }
}

export async function serveSecrets(host: string, ch: ServerChannel, o: SecretsServiceOptions): Promise<void> {
  ch.on('error', () => {});
  const drainMs = o.drainMs ?? DRAIN_MS;
  let bundle: SecretBundle;
  try {
    bundle = await readSecretBundle(secretsDirFor(o.fleetDir, host, o.root));
  } catch (err) {
    const message = (err as Error).message;
    ch.end(`${JSON.stringify({ ok: false, error: message })}\n`);
    o.log.warn({ host, err: message }, 'secrets not delivered');
    return;
  }
  const line = Buffer.from(`${JSON.stringify({ ok: true, ...bundle })}\n`);
  if (await send(ch, line, drainMs)) o.log.info({ host, version: bundle.version, files: bundle.files.length }, 'secrets delivered');
  else o.log.warn({ host, version: bundle.version }, `secrets not delivered: the agent did not read them within ${drainMs} ms; channel closed`);
}

/** Write DATA a piece at a time, each once the last left the channel; false (channel closed) past DRAIN_MS. */
async function send(ch: ServerChannel, data: Buffer, drainMs: number): Promise<boolean> {
  const deadline = Date.now() + drainMs;
  for (let at = 0; at < data.length; at += PIECE) {
    // The write callback runs once ssh2 sent the piece (the agent's window had room for it).
    const sent = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      const closed = (): void => { clearTimeout(t); resolve(false); };
      ch.once('close', closed);
      ch.write(data.subarray(at, at + PIECE), (err) => { clearTimeout(t); ch.off('close', closed); resolve(!err); });
    });
    if (!sent) {
      ch.close();
      return false;
    }
  }
  ch.end();
  return true;
}
