// The size of V8's young generation for long-running daemons (the hub).
//
// Node 22 and later let V8 grow each semi-space of the young generation up to
// 64 MiB when a process allocates a lot (Node 20: 16 MiB). A hub connecting
// thousands of agents allocates a lot, so on Node 24 its young generation grew
// to 128 MiB, all of it resident: measured with the same 2,000 agents, RSS per
// connected host went from 38 KiB (Node 20) to 61 KiB (Node 24), and a bare
// ssh2 server the same way (30 -> 40 KiB); with 16 MiB semi-spaces Node 24 is
// back at 42 / 33 KiB (docs/performance.md, "Node 24"). The heap limits are
// fixed when V8 starts (v8.setFlagsFromString has no effect on them), so the
// daemon re-executes itself once with the flag, keeping its PID (systemd, the
// benchmark and `kill` see one process), on runtimes that have
// process.execve (Node 22.15+). An explicit --max-semi-space-size, on the
// command line or in NODE_OPTIONS, is left as it is.

/**
 * MiB per semi-space. 16 (Node 20's default) first; 8 since a stalled
 * follower of a 500 MB job took Node 24's hub to +64..71 MiB over its
 * baseline with 16, at the +64 MiB its test allows (hostile-follower), and
 * +48..55 with 8, while 10,000 agents stayed inside every issue-18 target
 * (docs/performance.md, "final code of issue 18").
 */
export const SEMI_SPACE_MIB = 8;

const FLAG = '--max-semi-space-size';

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Re-execute this process with FLAG=SEMI_SPACE_MIB unless it was given one;
 * returns only when it does not (given, or no process.execve here). Call it
 * before anything is opened: the new image keeps only the standard streams.
 */
export function capYoungGeneration(): void {
  const given = [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)].some((a) => a === FLAG || a.startsWith(`${FLAG}=`));
  const execve = (process as unknown as { execve?: Execve }).execve;
  if (given || typeof execve !== 'function') return;
  try {
    execve(process.execPath, [process.execPath, `${FLAG}=${SEMI_SPACE_MIB}`, ...process.execArgv, ...process.argv.slice(1)], process.env);
  } catch (err) {
    // Not fatal: the daemon runs as it was started, with V8's default young generation.
    process.stderr.write(`bento: could not re-execute with ${FLAG}=${SEMI_SPACE_MIB} (${(err as Error).message}); running with the default heap\n`);
  }
}
