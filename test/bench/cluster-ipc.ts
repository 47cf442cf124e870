// Messages between the cluster bench (cluster-main.ts, the soak) and its
// load-generator workers (cluster-worker.ts), over the child_process IPC
// channel. The single-hub bench keeps its own (ipc.ts).
import type { AgentSpec } from './ipc.js';

export interface HubEndpoint { host: string; port: number }

export interface ClusterWorkerInit {
  t: 'init';
  /** Every hub, in config order; each agent tries them in its own stable order (endpointOrder "spread"). */
  endpoints: HubEndpoint[];
  localAddress: string;
  maxInFlight: number;
  backoff: { initialMs: number; maxMs: number };
  /** How long a job runs at the agent before its job.end (0: at once). */
  jobMs: number;
  agents: AgentSpec[];
  /**
   * SHARE of the agents (by a hash of the name) start at endpoint HUB; the
   * others try it last. Absent: each agent's own order only (about 1/H each).
   */
  first?: { hub: number; share: number };
}

export type ToClusterWorker =
  | ClusterWorkerInit
  | { t: 'connect' }
  | { t: 'stats' }
  | { t: 'inFlight'; max: number }
  | { t: 'jobMs'; ms: number }
  /** Remember which agents are connected to hub HUB now (the one about to be killed): stats count them as they come back. */
  | { t: 'mark'; hub: number }
  /** Job ids each agent ran, as "host jobId" lines (the invariant check compares them with the records). */
  | { t: 'runs' }
  | { t: 'stop' };

export interface ClusterWorkerStats {
  t: 'stats';
  /** Agents with a welcome and their reverse forward accepted. */
  ready: number;
  /** Ready agents per hub (index into endpoints). */
  perHub: number[];
  inFlight: number;
  jobStarts: number;
  /** job.start for a job id this agent had started before: a job run twice. */
  duplicateStarts: number;
  acks: number;
  lastAckAt: number;
  /** Results not acknowledged yet (the agents' outboxes), and jobs running now. */
  outbox: number;
  running: number;
  errors: number;
  drops: number;
  heartbeatsSent: number;
  heartbeatsEchoed: number;
  hubErrors: number;
  lastError: string;
  /** Agents marked (mark), and how many of those are ready again, at another hub than the marked one. */
  marked: number;
  markedBack: number;
}

export type FromClusterWorker =
  | { t: 'inited' }
  | ClusterWorkerStats
  | { t: 'runs'; runs: string[] }
  | { t: 'stopped' };
