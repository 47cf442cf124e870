// Stop a daemon together with the processes it forked.
// Why: sshd's per-connection children and danted's worker processes outlive their parent
// when only the parent is signalled, and sshd's children call setsid(), so a process-group
// kill would miss them. We snapshot the descendants from /proc before stopping the parent
// and SIGKILL those that are still the same process (pid + start time) afterwards.
import { readdirSync, readFileSync } from 'node:fs';
import type { Daemon } from './proc.js';

interface ProcId { pid: number; start: string }

function statOf(pid: number): { ppid: number; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), start: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** All live descendants of pid (children, grandchildren, ...), with their start times. */
export function descendants(pid: number): ProcId[] {
  const children = new Map<number, ProcId[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = statOf(Number(name));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push({ pid: Number(name), start: st.start });
    children.set(st.ppid, list);
  }
  const out: ProcId[] = [];
  const queue = [pid];
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    for (const c of children.get(queue[i]!) ?? []) { out.push(c); queue.push(c.pid); }
  }
  return out;
}

/** daemon.stop(), then SIGKILL whatever it had forked and left behind. */
export async function stopTree(daemon: Daemon, graceMs = 3000): Promise<void> {
  const pid = daemon.child.pid;
  const kids = pid !== undefined ? descendants(pid) : [];
  await daemon.stop(graceMs);
  for (const k of kids) {
    if (statOf(k.pid)?.start !== k.start) continue; // gone, or the pid was reused
    try { process.kill(k.pid, 'SIGKILL'); } catch { /* exited meanwhile */ }
  }
}
