// The admin API spoken on the hub's Unix socket (CLI <-> daemon): one JSON
// request line, then JSON event lines until the hub closes. `proxy` is the one
// exception: after its `ready` event the socket carries raw bytes.
import { check, known, type Schema } from './schema.js';
import { BentoError } from './errors.js';
import { ACTIONS, type Action, type Outcome } from './messages.js';
import { JOB_ID_RE } from './names.js';
import { OFFLINE_POLICIES, ROLLOUT_ID_RE, type OfflinePolicy, type RolloutDetail, type RolloutHostView, type RolloutSummary } from './rollout.js';

export type AdminRequest =
  | { op: 'ping' }
  /** gzip: the answer as one gzip stream (hub/admin/gzip.ts); hubs before it answer plain. */
  | { op: 'list'; gzip?: boolean }
  | { op: 'trigger'; hosts: string[]; all: boolean; tags: string[]; action: Action; queue: boolean; follow: boolean;
      /** Switch to the store path of the host's last successful `bento-hub build` instead of rebuilding on the host. */
      prebuilt?: boolean;
      /** With follow: also follow jobs queued for hosts that are not connected, until they connect and finish. */
      wait?: boolean }
  | { op: 'proxy'; host: string; port: number }
  | { op: 'status'; gzip?: boolean }
  /** One job: its record and stored output; with follow, then its live lines (joined by seq) until it ends. */
  | { op: 'job'; jobId: string; follow: boolean }
  /** `bento-hub cluster status`: the hubs, their agents, the NATS servers and JetStream health. */
  | { op: 'cluster' }
  /** A staged rollout (docs/rollouts.md). Sizes and durations are the CLI's strings ("3", "25%", "10m"), parsed by the hub. */
  | { op: 'rollout.start'; hosts: string[]; all: boolean; tags: string[]; action: Action; follow: boolean;
      canary?: string; waves?: string[]; maxInFlight?: string; maxFailures?: string; offline?: OfflinePolicy; offlineTimeout?: string;
      pauseAfterCanary?: boolean }
  | { op: 'rollout.resume'; id: string; retryFailed?: boolean; follow: boolean }
  | { op: 'rollout.abort'; id: string }
  | { op: 'rollout.status'; id?: string };

/** One schema per admin op (exported for the protocol fuzzer's checks). */
export const ADMIN_SCHEMAS: Readonly<Record<AdminRequest['op'], Schema>> = {
  ping: {},
  list: { gzip: { t: 'bool', opt: true } },
  trigger: {
    hosts: { t: 'strs', max: 63, maxItems: 10_000 }, all: { t: 'bool' }, tags: { t: 'strs', max: 63, maxItems: 64 },
    action: { t: 'str', max: 16, oneOf: ACTIONS }, queue: { t: 'bool' }, follow: { t: 'bool' }, prebuilt: { t: 'bool', opt: true },
    wait: { t: 'bool', opt: true },
  },
  proxy: { host: { t: 'str', max: 63 }, port: { t: 'int', min: 1, max: 65535 } },
  status: { gzip: { t: 'bool', opt: true } },
  job: { jobId: { t: 'str', max: 64, re: JOB_ID_RE }, follow: { t: 'bool' } },
  cluster: {},
  'rollout.start': {
    hosts: { t: 'strs', max: 63, maxItems: 10_000 }, all: { t: 'bool' }, tags: { t: 'strs', max: 63, maxItems: 64 },
    action: { t: 'str', max: 16, oneOf: ACTIONS }, follow: { t: 'bool' },
    canary: { t: 'str', max: 8, opt: true }, waves: { t: 'strs', max: 8, maxItems: 32, opt: true },
    maxInFlight: { t: 'str', max: 8, opt: true }, maxFailures: { t: 'str', max: 8, opt: true },
    offline: { t: 'str', max: 8, oneOf: OFFLINE_POLICIES, opt: true }, offlineTimeout: { t: 'str', max: 12, opt: true },
    pauseAfterCanary: { t: 'bool', opt: true },
  },
  'rollout.resume': { id: { t: 'str', max: 16, re: ROLLOUT_ID_RE }, retryFailed: { t: 'bool', opt: true }, follow: { t: 'bool' } },
  'rollout.abort': { id: { t: 'str', max: 16, re: ROLLOUT_ID_RE } },
  'rollout.status': { id: { t: 'str', max: 16, re: ROLLOUT_ID_RE, opt: true } },
};

export function parseAdminRequest(value: unknown): AdminRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BentoError('PROTOCOL_MALFORMED', 'request is not a JSON object');
  }
  const obj = value as Record<string, unknown>;
  const op = obj['op'];
  if (typeof op !== 'string' || !Object.prototype.hasOwnProperty.call(ADMIN_SCHEMAS, op)) {
    // Not String(op): an object whose "toString" is not a function makes that throw a TypeError (found by the fuzzer).
    const shown = typeof op === 'string' ? JSON.stringify(op.slice(0, 40)) : `of type ${op === null ? 'null' : typeof op}`;
    throw new BentoError('PROTOCOL_UNKNOWN_TYPE', `unknown admin op ${shown}`);
  }
  const schema = ADMIN_SCHEMAS[op as AdminRequest['op']];
  const problem = check(obj, schema);
  if (problem) throw new BentoError('PROTOCOL_MALFORMED', `${op}: ${problem}`);
  return known(obj, schema, 'op') as unknown as AdminRequest;
}

/** One connected agent, as `list` reports it. */
export interface ClientInfo {
  name: string;
  /** The hub holding the session ("local" on a single hub). */
  hub?: string;
  remoteAddress: string; carrier: string; endpoint: string; connectedSince: string;
  agentVersion: string; lastHeartbeat: string; system: string | null; generation: number | null;
  configHash: string | null; runningJob: { jobId: string; action: Action; startedAt: string } | null;
  /** The job waiting behind the running one (a follow-up), if any. Older hubs omit it. */
  queuedJob?: { jobId: string; action: Action; requestedAt: string } | null;
}

/** One job as `bento-hub job ID` shows it. */
export interface JobInfo extends StatusJob {
  host: string;
  /** Output the hub no longer keeps: trimmed in the middle (over the per-job cap), or dropped (the host's total). */
  output?: { lines: number; bytes: number; trimmedLines: number; trimmedBytes: number; dropped: boolean };
}

/**
 * Bento's per-host states (docs/status.md): upstream's seven plus running,
 * offline, never connected (registered, no agent ever came; "new machine"
 * before) and nothing published (the last job succeeded but the hub has no
 * version to compare with; "up to date" before). Only ever added to.
 */
export const HOST_STATES = [
  'new machine', 'up to date', 'rebuild pending', 'sync pending', 'failing', 'rolled back', 'auto updated', 'running', 'offline',
  'never connected', 'nothing published',
] as const;
export type HostStateName = (typeof HOST_STATES)[number];

/** One job as `status` shows it. */
export interface StatusJob {
  id: string; action: Action; state: string; origin: 'hub' | 'agent';
  requestedAt: string; startedAt: string | null; endedAt: string | null; durationMs: number | null;
  exitCode: number | null; reason: string | null;
}

/** One registered host, as `status` reports it (stable field names; fields are only ever added). */
export interface HostStatus {
  name: string;
  state: HostStateName;
  /** Why this state, in a sentence (null when obvious). */
  detail: string | null;
  /** offline only: the state it was in when last seen; null otherwise. */
  lastKnownState: HostStateName | null;
  connected: boolean;
  connectedSince: string | null;
  /** Last heartbeat when connected, else when the connection ended; null if never connected. */
  lastSeenAt: string | null;
  carrier: string | null;
  via: string | null;
  /** The hub holding its session ("local" on a single hub); null when offline. */
  hub?: string | null;
  remoteAddress: string | null;
  /** What the hub publishes for it (bento-hub deploy), or null. */
  published: { hash: string; publishedAt: string } | null;
  /** The published config hash the host reports running (hello / job.end configHash), or null. */
  applied: string | null;
  system: string | null;
  generation: number | null;
  runningJob: StatusJob | null;
  /** A job waiting to be dispatched (a trigger --queue for an offline host, or a follow-up). */
  queuedJob: StatusJob | null;
  lastJob: StatusJob | null;
  /** The last reboot the agent asked for (kernel change) and reported back after, or null. */
  lastReboot?: RebootReport | null;
}

/** What an agent reported in its first hello after a reboot it requested (hub/store/host-state.ts). */
export interface RebootReport {
  jobId: string; requestedAt: string; method: 'reboot' | 'kexec'; reportedAt: string;
  /** What booted (hello.system) and what the reboot meant to boot. */
  system: string | null; expected: string | null;
}

/** One hub of a cluster, as `bento-hub cluster status` shows it. */
export interface ClusterHub { name: string; alive: boolean; self: boolean; startedAt: string; lastBeatAt: string; version: string; agents: number }

/** One replica of a JetStream stream (a bucket or the output stream). */
export interface ClusterReplica { server: string; leader: boolean; current: boolean; offline: boolean; lagMessages: number; activeMs: number | null }

export interface ClusterStatus {
  /** The hub that answered. */
  hub: string;
  /** false: a single hub (no `cluster` in hub.json); everything below is empty. */
  clustered: boolean;
  hubs: ClusterHub[];
  nats: null | {
    /** The server this hub is connected to. */
    connectedTo: { name: string; version: string; cluster: string | null; url: string };
    /** Client URLs the servers announce (the cluster's members as this hub knows them). */
    knownServers: string[];
    /** This hub's NATS connection is up (false: reads come from the local view, writes wait). */
    connected: boolean;
    jetstream: { ok: boolean; error: string | null; streams: number; storageBytes: number; memoryBytes: number; apiErrors: number };
    streams: Array<{ name: string; messages: number; bytes: number; replicas: ClusterReplica[]; leader: string | null; error: string | null }>;
  };
}

export type TriggerDisposition = 'dispatched' | 'coalesced' | 'queued';

export type AdminEvent =
  | { ev: 'pong'; hubVersion: string }
  | { ev: 'list'; clients: ClientInfo[] }
  | { ev: 'accepted'; host: string; jobId: string; disposition: TriggerDisposition; action: Action; storePath?: string;
      /** The host is not connected: the job waits in its queue (followed only with the request's `wait`). */
      offline?: true }
  | { ev: 'rejected'; host: string; code: string; message: string }
  | { ev: 'started'; host: string; jobId: string }
  /** `seq`: the line's place in the job's output (stored and live lines join on it); absent from older hubs and `trigger`. */
  | { ev: 'output'; host: string; jobId: string; stream: 'stdout' | 'stderr'; data: string; seq?: number }
  /** This stream left out `lines` output lines of a job because its reader fell behind; they are in the job's stored log. */
  | { ev: 'skipped'; host: string; jobId: string; lines: number; bytes: number; message: string }
  /** The job's stored log itself lacks these lines: the job printed more than its cap (hub.json limits.jobOutputBytes). */
  | { ev: 'trimmed'; host: string; jobId: string; lines: number; bytes: number; message: string }
  /** The last event of a stream the hub ended because its reader fell too far behind. */
  | { ev: 'cut'; message: string }
  /** `bento-hub job ID`: the job's record. */
  | { ev: 'job'; job: JobInfo }
  | { ev: 'end'; host: string; jobId: string; outcome: Outcome; exitCode: number | null; durationMs: number; reason?: string }
  | ({ ev: 'cluster' } & ClusterStatus)
  /** `rollouts`: the running and halted rollouts (docs/rollouts.md); absent from hubs before rollouts. */
  | { ev: 'status'; generatedAt: string; hosts: HostStatus[]; rollouts?: RolloutSummary[] }
  | { ev: 'rollout'; rollout: RolloutDetail }
  /** While following a rollout: the summary, and the hosts that changed since the last event. */
  | { ev: 'rollout.progress'; rollout: RolloutSummary; changed: RolloutHostView[] }
  | { ev: 'rollouts'; rollouts: RolloutSummary[] }
  | { ev: 'ready' }
  | { ev: 'done' }
  | { ev: 'error'; code: string; message: string };
