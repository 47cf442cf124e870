// The order an agent tries its hub endpoints in.
//
// "listed" (the default): as the config lists them, the first preferred: a
// direct endpoint before a fallback through Tor, say.
//
// "spread" (several equivalent hubs, docs/cluster.md): each agent orders the
// endpoints by a stable hash of its own name with each endpoint (rendezvous
// hashing), so agents start spread evenly over the hubs, each keeps starting
// at the same one, and when a hub dies, the agents it held move to the
// survivors evenly too (each agent's second choice is as spread as its
// first), instead of all piling onto the next endpoint in the list. An
// endpoint whose host name has several addresses (one DNS name for all hubs)
// counts as one endpoint per address, ordered the same way. Endpoints through
// a proxy are never resolved here (the proxy resolves them: no DNS leak).
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import type { Endpoint } from './endpoint.js';
import { isIp, isOnion } from './endpoint.js';

export type EndpointOrder = 'listed' | 'spread';

export type Lookup = (host: string) => Promise<string[]>;

const systemLookup: Lookup = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/** How much a name likes a key: the first 48 bits of sha256(name, key). */
function weight(name: string, key: string): number {
  return createHash('sha256').update(`${name}\n${key}`).digest().readUIntBE(0, 6);
}

/** ITEMS ordered by NAME's stable preference (highest weight first). */
export function rendezvous<T>(name: string, items: readonly T[], keyOf: (t: T) => string): T[] {
  return items.map((t) => ({ t, w: weight(name, keyOf(t)) })).sort((a, b) => b.w - a.w).map((x) => x.t);
}

/** The endpoints to try this round, in order. A name that does not resolve stays as it is (the connect reports it). */
export async function endpointsToTry(name: string, endpoints: readonly Endpoint[], order: EndpointOrder, resolve: Lookup = systemLookup): Promise<Endpoint[]> {
  if (order === 'listed') return [...endpoints];
  const out: Endpoint[] = [];
  for (const ep of rendezvous(name, endpoints, (e) => e.label)) {
    if (ep.proxy || ep.proxyCommand || isIp(ep.host) || isOnion(ep.host)) {
      out.push(ep);
      continue;
    }
    const addrs = [...new Set(await resolve(ep.host).catch(() => [] as string[]))];
    if (addrs.length <= 1) {
      out.push(ep);
      continue;
    }
    for (const address of rendezvous(name, addrs, (a) => a)) out.push({ ...ep, address, label: `${ep.label} (${address})` });
  }
  return out;
}
