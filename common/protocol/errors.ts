// The one error registry. Codes are stable strings: they appear in --json
// output, on the wire (`error` messages) and in logs, so scripts can match on
// them. Each code carries the CLI exit status it maps to.
export const ERRORS = {
  USAGE: { exit: 2, summary: 'invalid command line' },
  CONFIG_INVALID: { exit: 2, summary: 'a configuration file is invalid' },
  INVALID_HOST_NAME: { exit: 2, summary: 'host name is not a DNS label' },
  INVALID_KEY: { exit: 2, summary: 'public key is not a valid OpenSSH key' },
  FLEET_NOT_INITIALIZED: { exit: 4, summary: 'fleet directory has no hub.json; run `bento-hub init`' },
  FLEET_EXISTS: { exit: 6, summary: 'fleet directory is already initialized' },
  HUB_ALREADY_RUNNING: { exit: 6, summary: 'another hub is already serving this fleet' },
  STATE_DIR_LOCKED: { exit: 6, summary: 'another agent is running on this state directory (each agent needs its own stateDir)' },
  ADDRESS_IN_USE: { exit: 6, summary: 'a listen address (HOST:PORT) is already in use by another program' },
  HUB_NOT_RUNNING: { exit: 4, summary: 'the hub daemon is not running (no admin socket)' },
  AGENT_NOT_RUNNING: { exit: 4, summary: 'the agent is not running here, or its local socket is off' },
  UNKNOWN_HOST: { exit: 5, summary: 'no such host in the registry' },
  HOST_EXISTS: { exit: 6, summary: 'host is already registered' },
  KEY_IN_USE: { exit: 6, summary: 'key is already registered to another host' },
  HOST_OFFLINE: { exit: 3, summary: 'host is not connected' },
  JOB_FAILED: { exit: 1, summary: 'a job did not succeed' },
  UNKNOWN_JOB: { exit: 5, summary: 'no such job (never recorded, or pruned from the history)' },
  JOB_NOT_FINISHED: { exit: 9, summary: 'the job has not finished yet (queued or running; follow it with `bento-hub job ID --follow`)' },
  TRIGGER_UNCONFIRMED: { exit: 10, summary: 'the hub holding the host did not answer the trigger in time and may still run it (see `bento-hub status HOST` before triggering again)' },
  NO_TARGETS: { exit: 2, summary: 'no host matched' },
  PROTOCOL_MALFORMED: { exit: 1, summary: 'malformed protocol message' },
  PROTOCOL_OVERSIZED: { exit: 1, summary: 'protocol message larger than the limit' },
  PROTOCOL_UNKNOWN_TYPE: { exit: 1, summary: 'unknown protocol message type' },
  PROTOCOL_VERSION: { exit: 1, summary: 'unsupported protocol version' },
  PROTOCOL_STATE: { exit: 1, summary: 'message not valid in this state' },
  HOST_KEY_MISMATCH: { exit: 1, summary: 'hub offered a host key that does not match the pinned fingerprint' },
  AUTH_REJECTED: { exit: 1, summary: 'hub refused this key' },
  CONNECT_FAILED: { exit: 1, summary: 'could not reach the hub' },
  PROXY_FAILED: { exit: 1, summary: 'proxy refused or failed' },
  REPLACED: { exit: 1, summary: 'a newer connection from the same host replaced this one' },
  FORBIDDEN: { exit: 1, summary: 'operation not allowed' },
  FORWARD_FAILED: { exit: 1, summary: 'the host could not connect to the port it forwards (connection refused: nothing listens there?)' },
  BUILD_FAILED: { exit: 1, summary: 'a host configuration did not build' },
  PUBLISH_REFUSED: { exit: 1, summary: 'a host configuration cannot be published (symlink leaving the fleet, special file, ...)' },
  HASH_MISMATCH: { exit: 1, summary: 'a downloaded configuration does not match its published content hash' },
  NOT_PUBLISHED: { exit: 5, summary: 'nothing is published for this host' },
  NO_PREBUILT: { exit: 5, summary: 'the host has no successful `bento-hub build` to switch to (trigger --prebuilt)' },
  MACHINE_ID_MISMATCH: { exit: 1, summary: 'the system was built for another machine: its pinned machine id (etc/bento/machine-id) is missing or not this host\'s /etc/machine-id; nothing was activated' },
  UNSUPPORTED: { exit: 1, summary: 'the agent does not support this (upgrade bento-client)' },
  STATE_WRITE_FAILED: { exit: 1, summary: 'the hub could not write its state to disk (disk full?); retried until it can' },
  UNKNOWN_ROLLOUT: { exit: 5, summary: 'no such rollout (see `bento-hub rollout status`)' },
  ROLLOUT_CONFLICT: { exit: 6, summary: 'a running or halted rollout already covers some of these hosts (resume or abort it first)' },
  ROLLOUT_STATE: { exit: 6, summary: 'the rollout is not in a state that allows this (only a halted one resumes; a finished one cannot be aborted)' },
  ROLLOUT_HALTED: { exit: 7, summary: 'a rollout halted: failures in a wave passed its threshold, or it paused after the canary wave (`bento-hub rollout resume ID` or `abort ID`)' },
  ROLLOUT_ABORTED: { exit: 8, summary: 'a rollout was aborted before every host had its turn' },
  CLUSTER_UNAVAILABLE: { exit: 1, summary: 'the cluster engine (NATS JetStream) cannot be reached, or refused this hub (credentials, TLS, no quorum)' },
  INBOUND_OVERRUN: { exit: 1, summary: 'the agent kept sending after the hub stopped reading its control channel (it ignored the SSH window); its connection was cut' },
  OUTBOUND_OVERRUN: { exit: 1, summary: 'the agent did not read what the hub sent it (more than limits.sessionOutboundBytes waited on its connection); its connection was cut' },
  STATE_CONFLICT: { exit: 1, summary: 'the record changed since it was read (another writer won); read it again and retry' },
  INTERNAL: { exit: 1, summary: 'internal error' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class BentoError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERRORS[code].summary, options);
    this.code = code;
    this.name = 'BentoError';
  }
  get exitCode(): number {
    return ERRORS[this.code].exit;
  }
}

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, s);
}

/** Turn anything thrown into a BentoError without losing the original. */
export function asBentoError(err: unknown): BentoError {
  if (err instanceof BentoError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BentoError('INTERNAL', message, { cause: err });
}
