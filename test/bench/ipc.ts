// Messages between the bench orchestrator (main.ts) and its load-generator
// workers (agent-worker.ts), over the child_process IPC channel.

export interface AgentSpec {
  name: string;
  /** OpenSSH-format ed25519 private key. */
  privateKey: string;
}

export interface WorkerInit {
  t: 'init';
  host: string;
  port: number;
  /** Source address for this worker's connections (127.x.y.z), so every worker has its own ephemeral port range. */
  localAddress: string;
  /** Handshakes in flight at once in this worker. */
  maxInFlight: number;
  /** Reconnect policy after a lost connection: the real agent's capped exponential backoff with full jitter. */
  backoff: { initialMs: number; maxMs: number };
  agents: AgentSpec[];
}

export type ToWorker =
  | WorkerInit
  | { t: 'connect' }
  | { t: 'stats' }
  | { t: 'poll'; name: string; expectHash: string }
  | { t: 'inFlight'; max: number }
  | { t: 'stop' };

/** One no-change config poll over an agent's tunnel (client/pull code), bytes counted at its TCP socket. */
export interface PollResult {
  t: 'polled';
  ok: boolean;
  error: string;
  /** "unchanged" when the published hash is the expected one. */
  status: string;
  bytesIn: number;
  bytesOut: number;
  /** write() calls / data events on the socket: roughly the TCP segments each way. */
  writes: number;
  reads: number;
  ms: number;
}

export interface WorkerStats {
  t: 'stats';
  /** Agents that got the welcome and had their reverse forward accepted. */
  ready: number;
  /** Connections currently in the handshake (TCP connect .. welcome + forward). */
  inFlight: number;
  /** job.start messages received / job.ack messages received, since start. */
  jobStarts: number;
  acks: number;
  /** Wall clock (Date.now) of the newest job.ack. */
  lastAckAt: number;
  /** Connection attempts that ended in an error, and closes of ready connections. */
  errors: number;
  drops: number;
  heartbeatsSent: number;
  heartbeatsEchoed: number;
  /** Hub `error` lines seen (a hub closing a session tells why). */
  hubErrors: number;
  lastError: string;
}

export type FromWorker =
  | { t: 'inited' }
  | WorkerStats
  | PollResult
  | { t: 'stopped' };

/** Orchestrator -> attack worker (attack-worker.ts). */
export type AttackToWorker =
  | { t: 'attack'; port: number; sources: string[]; count: number; mode: 'silent' | 'ssh-stall' }
  | { t: 'attack-stats' }
  | { t: 'calm' };

export type AttackFromWorker =
  | { t: 'attacking'; open: number; connects: number }
  | { t: 'attack-stats'; open: number; connects: number }
  | { t: 'calm' };

/** Orchestrator -> compromised-host worker (compromised-worker.ts). */
export type CompromisedToWorker =
  | {
    t: 'start';
    port: number;
    agent: AgentSpec;
    /** Invented jobs, each: job.started, `outputBytes` of job.output in 32 KiB lines, job.end. */
    jobs: number;
    outputBytes: number;
  }
  /** Stop writing (what is in flight still reaches the hub), and start again. */
  | { t: 'pause' }
  | { t: 'resume' };

export type CompromisedFromWorker =
  | { t: 'connected' }
  | { t: 'progress'; jobs: number; bytes: number; acks: number; errors: string }
  | { t: 'failed'; error: string };
