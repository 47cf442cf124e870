// One promise raced against a deadline, for the cluster's waits on NATS
// (a bucket's first load, a watch's start, the first heartbeat back): each
// must end in an error the hub reports rather than wait forever on a server
// that died.

/**
 * PROMISE's outcome if it settles within MS; else a rejection with
 * makeError(). A value that comes after the deadline goes to onLate, so what
 * nobody waits for any more (a watch) can be released.
 */
export function withinDeadline<T>(promise: Promise<T>, ms: number, makeError: () => Error, onLate?: (late: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { late = true; reject(makeError()); }, ms);
  });
  if (onLate) promise.then((v) => { if (late) onLate(v); }, () => undefined);
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
