// The live summary line of a fan-out (`trigger` to several hosts) on a
// terminal: "37/40 done, 2 failed, 1 running (web3)", redrawn in place on
// stderr under the hosts' output. Anything else printed meanwhile goes
// through print(), which lifts the line, writes, and puts it back, so output
// and summary never overwrite each other. Off (print() just writes) when
// stderr is not a terminal or with --json: logs and pipes get plain lines.
import { visibleWidth } from './util.js';

export type HostPhase = 'running' | 'waiting' | 'success' | 'failed' | 'queued';

export interface FanoutProgress {
  set(host: string, phase: HostPhase): void;
  /** Write a whole line (with its newline) to a stream without garbling the summary line. */
  print(stream: NodeJS.WriteStream, text: string): void;
  stop(): void;
}

/** The summary sentence itself (exported for its unit test). */
export function summaryLine(phases: ReadonlyMap<string, HostPhase>, elapsedMs: number): string {
  const of = (p: HostPhase): string[] => [...phases].filter(([, x]) => x === p).map(([h]) => h).sort();
  const failed = of('failed').length;
  const done = of('success').length + failed;
  const running = of('running');
  const waiting = of('waiting');
  const queued = of('queued');
  const names = (hs: string[]): string => (hs.length <= 3 ? hs.join(', ') : `${hs.slice(0, 3).join(', ')}, +${hs.length - 3}`);
  const parts = [`${done}/${phases.size} done`, `${failed} failed`, `${running.length} running${running.length ? ` (${names(running)})` : ''}`];
  if (queued.length) parts.push(`${queued.length} queued`);
  if (waiting.length) parts.push(`waiting for ${names(waiting)} to connect`);
  return `${parts.join(', ')} · ${Math.round(elapsedMs / 1000)}s`;
}

export function fanoutProgress(opts: { enabled: boolean; paint: (code: number, s: string) => string }): FanoutProgress {
  const err = process.stderr;
  const phases = new Map<string, HostPhase>();
  const t0 = Date.now();
  let shown = false;
  const on = opts.enabled && err.isTTY === true;
  // A line wider than the terminal wraps, and \r would then clear only its last row.
  const fit = (s: string): string => {
    const max = Math.max(20, (err.columns || 80) - 1);
    return visibleWidth(s) > max ? `${s.slice(0, max - 1)}…` : s;
  };
  const draw = (): void => {
    if (!on || phases.size < 2) return;
    err.write(`\r\x1b[K${opts.paint(2, fit(summaryLine(phases, Date.now() - t0)))}`);
    shown = true;
  };
  const lift = (): void => {
    if (shown) err.write('\r\x1b[K');
    shown = false;
  };
  const timer = on ? setInterval(draw, 1000) : null;
  timer?.unref();
  return {
    set(host, phase) {
      phases.set(host, phase);
      draw();
    },
    print(stream, text) {
      lift();
      stream.write(text);
      draw();
    },
    stop() {
      if (timer) clearInterval(timer);
      lift();
    },
  };
}
