// A bound on the agent's spools (the job-result outbox, the pull's
// logs-outbox): what they hold waits for the hub, and a hub that never
// acknowledges (broken, or hostile) must not be able to fill the host's disk
// or, for results, make the hello too long for the hub to accept. Over the
// limit the oldest go first: the newest say most about the host now.

export interface SpoolLimits {
  /** At most this many entries. */
  maxEntries: number;
  /** At most this many bytes in all. */
  maxBytes: number;
}

/** `entries` sorted oldest first; returns the ones to drop (a prefix) so that the rest fit. */
export function overLimit<T extends { bytes: number }>(entries: readonly T[], limits: SpoolLimits): T[] {
  let count = entries.length;
  let bytes = entries.reduce((n, e) => n + e.bytes, 0);
  const drop: T[] = [];
  for (const e of entries) {
    if (count <= limits.maxEntries && bytes <= limits.maxBytes) break;
    drop.push(e);
    count--;
    bytes -= e.bytes;
  }
  return drop;
}
