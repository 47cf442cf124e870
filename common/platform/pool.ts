// Run FN over ITEMS, started in order, at most N at a time (at least one).
// Resolves when every item is done. If FN throws, the promise rejects with
// that error while the other workers carry on with the remaining items, so
// a caller that must see every item through catches inside FN. The bounded
// worker loop of building, publishing, pulling and cluster seeding.
export async function inPool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, n), items.length) }, worker));
}
