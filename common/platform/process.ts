// Is a process still there? Used to tell a stale lock or staging directory
// (its owner died) from one in use. EPERM means it exists but is not ours.
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
