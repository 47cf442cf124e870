// Host names are DNS labels and nothing else, because a name becomes a
// directory in the fleet and a key in the registry: with this rule it can
// never contain a path separator, "..", or a character a shell would expand.
// Lower case only, so two hosts can never collide on a case-insensitive disk.
import { customAlphabet } from 'nanoid';

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isHostName(name: unknown): name is string {
  return typeof name === 'string' && LABEL.test(name);
}

/**
 * Job ids: the hub's 16 random characters, or an agent's own "local-…",
 * "pull-…", "autoupdate-…" ids. One rule everywhere (wire schema, store keys,
 * log file names, URLs), because a job id becomes a file name and a URL path
 * segment. Ids made before JOB_ID_ALPHABET (nanoid: A-Z, a-z, 0-9, _ and -)
 * stay valid.
 */
export const JOB_ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

/**
 * Ids of jobs an agent starts itself: "local-" (its local page, `bento-client
 * upgrade`), "pull-" / "autoupdate-" (config pull with autoApply, flake
 * self-update). The hub records them when it hears of them.
 */
export const AGENT_JOB_ID = /^(local|pull|autoupdate)-/;
export type AgentJobOrigin = 'local' | 'pull' | 'autoupdate';

/** Who started job ID: its agent (by the id's prefix), or null for a hub. */
export function agentJobOrigin(id: string): AgentJobOrigin | null {
  return (AGENT_JOB_ID.exec(id)?.[1] as AgentJobOrigin | undefined) ?? null;
}

/**
 * New ids are read aloud, typed from a screen and compared by eye: lower-case
 * Crockford base32, without i, l, o and u, so no two characters look alike
 * (0/O, 1/l/I) and case never matters. 16 characters: 80 random bits.
 */
export const JOB_ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const randomBody = customAlphabet(JOB_ID_ALPHABET, 16);

/** The random part of a new job id (the hub's whole id; an agent puts its prefix before it). */
export function newJobIdBody(): string {
  return randomBody();
}

export function isJobId(id: unknown): id is string {
  return typeof id === 'string' && JOB_ID_RE.test(id);
}

export function hostNameProblem(name: string): string {
  if (name.length === 0) return 'host name is empty';
  if (name.length > 63) return `host name is ${name.length} characters; a DNS label has at most 63`;
  if (/[A-Z]/.test(name)) return `host name "${name}" has upper-case letters; use lower case`;
  if (name.startsWith('-') || name.endsWith('-')) return `host name "${name}" starts or ends with a hyphen`;
  return `host name "${printable(name)}" is not a DNS label (only a-z, 0-9 and inner hyphens)`;
}

/** Make untrusted text safe to put into a log line or an error message. */
export function printable(s: string, max = 80): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}
