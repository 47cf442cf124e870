// Which hub holds which host. One hub: every connected host is held by it,
// in process (local.ts). A cluster: an ownership record per host in a shared
// KV bucket, with an epoch, changed only by compare-and-swap
// (hub/cluster/holds.ts). Presence claims a host at its valid hello and
// releases it when the session ends; the scheduler asks for a write stamp
// (the fence) before it touches a host's job records; `list`, `status`, the
// dashboard and the metrics read the holders of the whole fleet; a trigger
// is routed to the hub that holds its host (hub/jobs/router.ts).
import type { LiveSession } from '../server/live-session.js';

/** A host held by a hub, as `list` shows it (from the live session, or from the ownership record of another hub). */
export interface Holder {
  host: string;
  /** The holding hub's name ("local" on a single hub). */
  hub: string;
  /** This hub holds it (its session is here). */
  local: boolean;
  epoch: number;
  /** When this hub's session began (ISO). */
  since: string;
  carrier: string;
  remoteAddress: string;
  /** How the agent came (hello.via), else the hub listener. */
  endpoint: string;
  via: string | null;
  agentVersion: string;
  system: string | null;
  generation: number | null;
  configHash: string | null;
  capabilities: string[];
  /** The last sign of life: the agent's last bytes (local), or the holding hub's last heartbeat. */
  lastSeen: string;
}

/** What a job record written for a host carries: who wrote it, under which claim. */
export interface Stamp { hub: string; epoch: number }

export interface HostHolders {
  /** This hub's name ("local" on a single hub). */
  readonly hubName: string;
  /** A valid hello: this hub holds the host from now on. Resolves once that is durable (cluster: the CAS won). */
  claim(s: LiveSession): Promise<void>;
  /** The session ended; if it still held the host, the host is free. */
  release(s: LiveSession): void;
  /** The live hub holding HOST, or null (nobody, or a hub that died). */
  holder(host: string): Holder | null;
  /** Every host a live hub holds. */
  all(): Holder[];
  /**
   * The fence for job records of HOST: the stamp to write them with, null
   * when records need none (one hub). Throws STATE_CONFLICT when another
   * live hub holds HOST, CLUSTER_UNAVAILABLE when this hub cannot tell
   * (it lost NATS, or was paused).
   */
  stamp(host: string): Stamp | null;
  /**
   * The id a job queued for HOST while nobody holds it gets, so hubs
   * queueing at once for one offline host share one job (null: a fresh id;
   * one hub coalesces in its scheduler).
   */
  queuedJobId(host: string): string | null;
  /**
   * Is this the hub that settles the jobs a dead hub left open for hosts that
   * never came back (one hub does it, so a job ends once)? One hub: never
   * needed (its restart recovery does it, hub/jobs/recovery.ts).
   */
  settlesOrphans(): boolean;
  /**
   * Is hub NAME alive (its heartbeats arrive)? Its open jobs are its own to
   * settle, also those of hosts it no longer holds (a guarded switch keeps
   * its job open after the connection drops). One hub: only itself.
   */
  hubAlive(name: string): boolean;
  /** How agents reach the live hubs (welcome.hubs); [] when not known (one hub). */
  hubUrls(): string[];
  /**
   * Where it applies (a cluster): FLOOR(host) is the highest claim epoch
   * stamped on HOST's open job records, and a new claim takes an epoch above
   * it as well as above the hold record's (holds.ts claim: why).
   */
  floorEpochs?(floor: (host: string) => number): void;
  /**
   * Where it applies (a cluster): a job record of HOST carries a newer claim
   * than the one this hub holds HOST by; raise this hub's claim above ABOVE
   * (one compare-and-swap on its own hold, never a takeover). Resolves true
   * once raised (holds.ts: why).
   */
  raiseClaim?(host: string, above: number): Promise<boolean>;
  /** Called when another hub took a host this hub had a session for; that session is closed as REPLACED first. */
  onLost(fn: (host: string, byHub: string) => void): void;
  /**
   * Called when this hub is current again after it was not (NATS away, or
   * paused), once the hosts taken meanwhile are dropped: stamps work again.
   * One hub: never (it is always current).
   */
  onCurrent(fn: () => void): void;
  close(): Promise<void>;
}

/** A live session's hold, as `list` shows it. */
export function sessionHolder(s: LiveSession, hub: string, epoch: number): Holder {
  const h = s.hello!;
  return {
    host: s.name, hub, local: true, epoch,
    since: new Date(s.connectedSince).toISOString(),
    carrier: s.origin.carrier, remoteAddress: s.origin.remoteAddress,
    endpoint: h.via ?? s.origin.endpoint, via: h.via ?? null,
    agentVersion: h.agentVersion, system: h.system, generation: h.generation, configHash: h.configHash,
    capabilities: h.capabilities, lastSeen: new Date(s.lastInbound).toISOString(),
  };
}
