// Host names are DNS labels and nothing else, because a name becomes a
// directory in the fleet and a key in the registry: with this rule it can
// never contain a path separator, "..", or a character a shell would expand.
// Lower case only, so two hosts can never collide on a case-insensitive disk.
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isHostName(name: unknown): name is string {
  return typeof name === 'string' && LABEL.test(name);
}

/**
 * Job ids: the hub's nanoid(16), or an agent's own "local-…"/"pull-…" ids.
 * One alphabet everywhere (wire schema, store keys, log file names, URLs),
 * because a job id becomes a file name and a URL path segment.
 */
export const JOB_ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

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
