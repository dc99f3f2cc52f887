/**
 * Whether a process with this pid is running (EPERM: it is, as another user). The writer asks before it
 * takes over another process's pending spool. The SDK's spool has the same check: it cannot live in
 * @tally/core (process.kill is Node-only), and the store does not depend on the SDK.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
