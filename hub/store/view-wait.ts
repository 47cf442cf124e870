// Waiting for this hub's view of a keyed store to show something another
// writer did: a compare-and-swap refused because another write won, whose
// record reaches the view a moment later through the store's watch (the
// local files at once; a cluster's bucket within milliseconds, seconds
// during a leader election). One helper for every such wait (fenced writes,
// holds, rollouts and their host claims, the registry), so they poll alike.

/** How long a refused write waits for the view to show the record that won. */
const VIEW_CATCHUP_MS = 3000;
/** How often the view is looked at meanwhile (it is local: cheap). */
const VIEW_POLL_MS = 20;

/** Until DONE() (true) or DEADLINE, a Date.now() time (false); by default VIEW_CATCHUP_MS from now. */
export async function untilView(done: () => boolean, deadline = Date.now() + VIEW_CATCHUP_MS): Promise<boolean> {
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, VIEW_POLL_MS));
  }
  return true;
}
