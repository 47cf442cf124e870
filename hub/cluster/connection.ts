// One NATS connection per hub, made from the cluster options. It reconnects
// forever (a hub outlives any NATS server), notices a dead server within
// ~10 s even without a TCP reset (pings every 5 s, 2 missed), and logs every
// state change, so "the hub lost NATS" is in the log with a time.
import { access, readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, nkeyAuthenticator, tokenAuthenticator, usernamePasswordAuthenticator,
  type Authenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { ResolvedClusterOptions } from './options.js';

async function readSecretFile(field: string, file: string): Promise<Uint8Array> {
  try {
    return new TextEncoder().encode((await readFile(file, 'utf8')).trim());
  } catch (err) {
    throw new BentoError('CONFIG_INVALID', `cluster.${field}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

async function authenticator(o: ResolvedClusterOptions): Promise<Authenticator | undefined> {
  const text = async (field: string, file: string): Promise<string> => new TextDecoder().decode(await readSecretFile(field, file));
  if (o.user !== undefined) return usernamePasswordAuthenticator(o.user, o.password ?? await text('passwordFile', o.passwordFile!));
  if (o.token !== undefined) return tokenAuthenticator(o.token);
  if (o.tokenFile !== undefined) return tokenAuthenticator(await text('tokenFile', o.tokenFile));
  if (o.nkeySeedFile !== undefined) return nkeyAuthenticator(await readSecretFile('nkeySeedFile', o.nkeySeedFile));
  if (o.credsFile !== undefined) return credsAuthenticator(await readSecretFile('credsFile', o.credsFile));
  return undefined;
}

/** The client options for O (files are checked here, so a typo is a clear CONFIG_INVALID, not a TLS error later). */
export async function connectionOptions(o: ResolvedClusterOptions): Promise<ConnectionOptions> {
  const auth = await authenticator(o);
  const wantsTls = o.tls !== undefined || o.servers.some((s) => s.startsWith('tls://'));
  if (o.tls) {
    for (const k of ['caFile', 'certFile', 'keyFile'] as const) {
      const f = o.tls[k];
      if (f === undefined) continue;
      try { await access(f); } catch (err) {
        throw new BentoError('CONFIG_INVALID', `cluster.tls.${k}: cannot read ${f}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  return {
    servers: o.servers,
    name: `bento-hub ${o.hubName}`,
    timeout: o.connectTimeoutMs,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    pingInterval: 5000,
    maxPingOut: 2,
    // The event bus delivers this hub's own events in process; the server
    // need not echo them back (KV watches and acks come from the server, not us).
    noEcho: true,
    // No stack captured per request "in case it fails": every JetStream write and routed trigger is a
    // request, and building two Error objects for each cost the fan-out ~15 % of a hub's CPU
    // (docs/performance.md). A failure still says what failed; callers wrap it with their own context.
    noAsyncTraces: true,
    ...(auth ? { authenticator: auth } : {}),
    // The transport reads these files at each (re)connect, so a renewed certificate is picked up.
    ...(wantsTls ? { tls: { ...o.tls } } : {}),
  };
}

export async function connectCluster(o: ResolvedClusterOptions, log: Logger): Promise<NatsConnection> {
  const opts = await connectionOptions(o);
  let nc: NatsConnection;
  try {
    nc = await connect(opts);
  } catch (err) {
    throw new BentoError('CLUSTER_UNAVAILABLE', `cannot connect to NATS (${o.servers.join(', ')}): ${(err as Error).message}`, { cause: err });
  }
  log.info({ server: nc.getServer(), servers: o.servers }, 'connected to NATS');
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') log.warn({ server: s.server }, 'lost the NATS server; reconnecting (writes wait, reads use the local view)');
      else if (s.type === 'reconnect') log.info({ server: s.server }, 'reconnected to NATS');
      else if (s.type === 'error') log.warn({ err: s.error.message }, 'NATS server error');
      else if (s.type === 'ldm') log.info({ server: s.server }, 'NATS server is shutting down (lame duck); moving');
      else if (s.type === 'slowConsumer') log.warn({ subject: s.sub.getSubject(), pending: s.pending }, 'slow NATS subscription');
    }
  })().catch(() => undefined);
  void nc.closed().then((err) => {
    if (err) log.error({ err: err.message }, 'NATS connection closed for good; cluster state is read-only until the hub restarts');
  });
  return nc;
}
