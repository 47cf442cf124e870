// Control-channel messages: a discriminated union on `type`, one schema per
// type, validated at the edge (parseMessage) before any handler sees them.
import { check, known, type Schema } from './schema.js';
import { BentoError } from './errors.js';
import { MAX_STORE_PATH, STORE_PATH_RE } from './store-path.js';
import { JOB_ID_RE as JOB_ID } from './names.js';

export const ACTIONS = ['switch', 'boot', 'test', 'build', 'dry-activate'] as const;
export type Action = (typeof ACTIONS)[number];
/** Actions that change what a machine runs or boots: the web pages ask before they start one. */
export const APPLYING_ACTIONS: readonly Action[] = ['switch', 'boot', 'test'];
export const OUTCOMES = ['success', 'failure', 'interrupted', 'rolled-back'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** hello.unreported holds at most this many job ids: the agent's outbox keeps no more results (client/jobs/outbox.ts). */
export const MAX_UNREPORTED = 256;
/** job.end's reason, in characters: a longer one is refused as malformed, so the agent cuts it first (fitJobEnd). */
export const MAX_REASON = 4096;
/**
 * What an agent accepts in welcome.hubs: at most this many URLs, each at most
 * WELCOME_HUB_URL_MAX long. A hub caps what it sends to these (liveness.ts):
 * one item over makes the agent refuse the whole welcome, and so the hub.
 */
export const WELCOME_MAX_HUBS = 64;
export const WELCOME_HUB_URL_MAX = 512;
const jobId = { t: 'str', max: 64, re: JOB_ID } as const;
const storePath = { t: 'str', max: MAX_STORE_PATH, re: STORE_PATH_RE, opt: true } as const;
/** Published content hashes (hub/publish): hex today; the alphabet is kept narrow on purpose. */
const CONFIG_HASH = /^[A-Za-z0-9_-]{1,128}$/;

/** Agent -> hub. */
export interface Hello {
  type: 'hello'; protocol: number; name: string; agentVersion: string;
  system: string | null; generation: number | null; configHash: string | null; capabilities: string[];
  /** The job the agent is still running from before a reconnect, if any. */
  runningJobId?: string | null;
  /** Finished jobs whose job.end the agent is about to replay (its outbox). */
  unreported?: string[];
  /** How the agent reached the hub, e.g. "socks5h://127.0.0.1:9050 -> ssh://x.onion:2222". */
  via?: string;
  /**
   * A reboot this agent asked for (rebootOnKernelChange) and has not yet
   * reported: sent in every hello until a welcome answers one, so the hub
   * hears "back after the reboot" even if the first connection after the boot
   * fails. The job that asked for it, when, how, and the system it meant to boot
   * (compare with `system`, what actually booted).
   */
  rebootJobId?: string;
  rebootRequestedAt?: string;
  rebootMethod?: 'reboot' | 'kexec';
  rebootExpected?: string;
}
export interface Heartbeat { type: 'heartbeat'; seq: number }
export interface JobStarted { type: 'job.started'; jobId: string; action: Action }
/**
 * Where an output line came from: the rebuild's stdout or stderr, or the
 * agent's own words about the job ("note": the rollback guard, the config
 * pull, post-switch, ...). nixos-rebuild prints its progress on stderr, so
 * stderr is not "errors"; notes are kept apart so Bento's own lines never
 * pass for the rebuild's, nor the rebuild's for Bento's. An agent sends
 * "note" only to a hub whose welcome lists NOTE_CAPABILITY (older hubs refuse
 * it as malformed); to others it sends the same text on stderr.
 */
export const OUTPUT_STREAMS = ['stdout', 'stderr', 'note'] as const;
export type OutputStream = (typeof OUTPUT_STREAMS)[number];
/** The welcome capability of hubs that accept job.output stream "note". */
export const NOTE_CAPABILITY = 'output-notes';
/** What the hub announces in its welcome (capabilities). */
export const HUB_CAPABILITIES: readonly string[] = [NOTE_CAPABILITY];

export interface JobOutput { type: 'job.output'; jobId: string; stream: OutputStream; data: string }
export interface JobEnd {
  type: 'job.end'; jobId: string; action: Action; outcome: Outcome; exitCode: number | null;
  startedAt: string; durationMs: number; reason?: string; system?: string | null; replayed?: boolean;
  /** switch/test/boot: the published config hash the system now runs (as hello.configHash), null if unknown. */
  configHash?: string | null;
  /** The system profile's generation after the job (as hello.generation), null if unknown. Older agents omit it. */
  generation?: number | null;
  /**
   * switch/test on a host whose agent has a health check (healthCommand): its
   * verdict. Absent when the host has none or it did not run (the switch
   * failed first). A failed check fails the job (and the rollback guard rolls it back).
   */
  health?: 'passed' | 'failed';
}
/**
 * Sent before a switch/test that the rollback guard protects: the connection
 * may drop during this job (the switch cut the network, restarted the agent,
 * or the agent reconnects on purpose to prove the hub is reachable). If it
 * does, the hub waits withinMs (plus a grace) for the agent to come back with
 * its verdict before it calls the job interrupted.
 */
export interface JobGuarded { type: 'job.guarded'; jobId: string; withinMs: number }
/** Hub -> agent. */
export interface Welcome {
  type: 'welcome'; protocol: number; hubVersion: string; heartbeatMs: number;
  /**
   * "ssh": the hub judges liveness at the SSH layer (keepalive@openssh.com
   * every heartbeatMs, answered inside ssh2), so the agent need not send
   * heartbeat messages, which cost the hub a channel read, a JSON parse and
   * an echo each (docs/performance.md). Absent: send heartbeats.
   */
  keepalive?: 'ssh';
  /** What this hub accepts beyond protocol 1's baseline (NOTE_CAPABILITY). Older hubs send none. */
  capabilities?: string[];
  /**
   * A hub of a cluster: how agents reach each live hub (docs/cluster.md).
   * The agent says when its config lists none of some of them; older agents
   * ignore it. Absent: one hub, or hubs that were not told their address.
   */
  hubs?: string[];
}
export interface JobStart {
  type: 'job.start'; jobId: string; action: Action;
  /**
   * Prebuilt closure (`bento-hub trigger --prebuilt`): instead of running
   * nixos-rebuild, realise exactly this system store path (from the hub's cache)
   * and activate it. Agents without the "prebuilt" capability never get one.
   */
  storePath?: string;
  /** With storePath: the published-config hash the hub built it from (reported back as the applied config). */
  configHash?: string;
}
export interface JobAck { type: 'job.ack'; jobId: string }
export interface ErrorMsg { type: 'error'; code: string; message: string }

export type AgentMessage = Hello | Heartbeat | JobStarted | JobOutput | JobEnd | JobGuarded;
export type HubMessage = Welcome | Heartbeat | JobStart | JobAck | ErrorMsg;
export type Message = AgentMessage | HubMessage;

/** One schema per message type (exported for the protocol fuzzer's checks). */
export const MESSAGE_SCHEMAS: Readonly<Record<Message['type'], Schema>> = {
  hello: {
    protocol: { t: 'int', min: 0, max: 1000 }, name: { t: 'str', max: 63 }, agentVersion: { t: 'str', max: 64 },
    system: { t: 'str', max: 1024, nullable: true }, generation: { t: 'int', min: 0, nullable: true },
    configHash: { t: 'str', max: 128, nullable: true }, capabilities: { t: 'strs', max: 64, maxItems: 64 },
    runningJobId: { t: 'str', max: 64, re: JOB_ID, opt: true, nullable: true }, via: { t: 'str', max: 512, opt: true },
    unreported: { t: 'strs', max: 64, maxItems: MAX_UNREPORTED, opt: true },
    rebootJobId: { t: 'str', max: 64, re: JOB_ID, opt: true }, rebootRequestedAt: { t: 'str', max: 40, opt: true },
    rebootMethod: { t: 'str', max: 8, oneOf: ['reboot', 'kexec'], opt: true }, rebootExpected: { t: 'str', max: 1024, opt: true },
  },
  heartbeat: { seq: { t: 'int', min: 0 } },
  'job.started': { jobId, action: { t: 'str', max: 16, oneOf: ACTIONS } },
  'job.output': { jobId, stream: { t: 'str', max: 6, oneOf: OUTPUT_STREAMS }, data: { t: 'str', max: 32 * 1024 } },
  'job.end': {
    jobId, action: { t: 'str', max: 16, oneOf: ACTIONS }, outcome: { t: 'str', max: 16, oneOf: OUTCOMES },
    exitCode: { t: 'int', nullable: true }, startedAt: { t: 'str', max: 40 }, durationMs: { t: 'int', min: 0 },
    reason: { t: 'str', max: MAX_REASON, opt: true }, system: { t: 'str', max: 1024, opt: true, nullable: true },
    replayed: { t: 'bool', opt: true }, configHash: { t: 'str', max: 128, opt: true, nullable: true },
    generation: { t: 'int', min: 0, opt: true, nullable: true },
    health: { t: 'str', max: 8, oneOf: ['passed', 'failed'], opt: true },
  },
  'job.guarded': { jobId, withinMs: { t: 'int', min: 0, max: 86_400_000 } },
  welcome: {
    protocol: { t: 'int', min: 0 }, hubVersion: { t: 'str', max: 64 }, heartbeatMs: { t: 'int', min: 100, max: 3_600_000 },
    keepalive: { t: 'str', max: 8, oneOf: ['ssh'], opt: true }, capabilities: { t: 'strs', max: 64, maxItems: 64, opt: true },
    hubs: { t: 'strs', max: WELCOME_HUB_URL_MAX, maxItems: WELCOME_MAX_HUBS, opt: true },
  },
  'job.start': { jobId, action: { t: 'str', max: 16, oneOf: ACTIONS }, storePath, configHash: { t: 'str', max: 128, re: CONFIG_HASH, opt: true } },
  'job.ack': { jobId },
  error: { code: { t: 'str', max: 64 }, message: { t: 'str', max: 4096 } },
};

const AGENT_TYPES = new Set(['hello', 'heartbeat', 'job.started', 'job.output', 'job.end', 'job.guarded']);
const HUB_TYPES = new Set(['welcome', 'heartbeat', 'job.start', 'job.ack', 'error']);

/**
 * Validate one decoded JSON value as a message a given side may send.
 * Throws BentoError(PROTOCOL_UNKNOWN_TYPE | PROTOCOL_MALFORMED).
 */
export function parseMessage<From extends 'agent' | 'hub'>(
  value: unknown,
  from: From,
): From extends 'agent' ? AgentMessage : HubMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BentoError('PROTOCOL_MALFORMED', 'message is not a JSON object');
  }
  const obj = value as Record<string, unknown>;
  const type = obj['type'];
  const allowed = from === 'agent' ? AGENT_TYPES : HUB_TYPES;
  if (typeof type !== 'string' || !allowed.has(type)) {
    const shown = typeof type === 'string' ? JSON.stringify(type.slice(0, 40)) : String(typeof type);
    throw new BentoError('PROTOCOL_UNKNOWN_TYPE', `unknown message type ${shown} from ${from}`);
  }
  const schema = MESSAGE_SCHEMAS[type as Message['type']];
  const problem = check(obj, schema);
  if (problem) throw new BentoError('PROTOCOL_MALFORMED', `${type}: ${problem}`);
  return known(obj, schema, 'type') as unknown as From extends 'agent' ? AgentMessage : HubMessage;
}

export function isAction(s: unknown): s is Action {
  return typeof s === 'string' && (ACTIONS as readonly string[]).includes(s);
}

/**
 * A result as the hub will accept it. A reason can quote a failing command at
 * any length; sent whole, the hub would refuse the message as malformed at
 * every connection and the result would never be recorded. Keep its head (the
 * cause) and say that it was cut.
 */
export function fitJobEnd(end: JobEnd): JobEnd {
  if (end.reason === undefined || end.reason.length <= MAX_REASON) return end;
  const keep = MAX_REASON - 64; // the note below is always shorter than 64 characters
  return { ...end, reason: `${end.reason.slice(0, keep)} [... ${end.reason.length - keep} more characters cut]` };
}

/**
 * A message as a hub with this welcome accepts it: a note becomes the same
 * text on stderr for a hub that does not list NOTE_CAPABILITY (it would
 * refuse the message as malformed and close the connection).
 */
export function forHub(msg: AgentMessage, welcome: Pick<Welcome, 'capabilities'> | null): AgentMessage {
  if (msg.type !== 'job.output' || msg.stream !== 'note' || welcome?.capabilities?.includes(NOTE_CAPABILITY)) return msg;
  return { ...msg, stream: 'stderr' };
}
