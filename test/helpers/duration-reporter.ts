// A third node:test reporter: each test file's time (the sum of its top-level
// tests' durations), written as one "ms<TAB>file" line per file when the run
// ends. run-tests.ts prints the slowest at the end of a run. Why: the suite's
// length is a CI budget (README: "well under 20 minutes"), and a TAP log in
// Node 22+ names tests, not the files they came from, so which files cost
// the time could not be read from a CI log.
interface TestData {
  nesting: number;
  file?: string;
  details?: { duration_ms?: number };
}

export default async function* durationReporter(source: AsyncIterable<{ type: string; data: unknown }>): AsyncGenerator<string> {
  const perFile = new Map<string, number>();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const d = event.data as TestData;
    // Node 20 reports each file as a test of its own at nesting 0; 22 and
    // later report the file's tests there. Either way nesting 0 counts once.
    if (d.nesting !== 0 || !d.file) continue;
    perFile.set(d.file, (perFile.get(d.file) ?? 0) + (d.details?.duration_ms ?? 0));
  }
  for (const [file, ms] of perFile) yield `${Math.round(ms)}\t${file}\n`;
}
