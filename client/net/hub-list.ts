// A hub of a cluster names the live hubs in its welcome (welcome.hubs,
// docs/cluster.md). The agent does not connect anywhere it was not told to
// by its own config (that is what the host's owner trusts), but it says,
// once per change, which of those hubs its config does not list: then it
// could not reach them when the hubs it lists are down.
import { parseEndpoint, type Endpoint } from './endpoint.js';

/** The hubs the welcome names that ENDPOINTS do not list (compared as normalised URLs). */
export function unlistedHubs(endpoints: readonly Endpoint[], hubs: readonly string[] | undefined): string[] {
  if (!hubs || hubs.length === 0) return [];
  const listed = new Set(endpoints.map((e) => e.url));
  const out: string[] = [];
  for (const h of hubs) {
    let url: string;
    try { url = parseEndpoint({ url: h }).url; } catch { continue; } // not a URL this agent could use
    if (!listed.has(url) && !out.includes(url)) out.push(url);
  }
  return out.sort();
}
