// Cleanup for the benches that build namespaces: every fixture process (by pid), every daemon (by pid,
// with its state directory and lock table), every namespace (by name) this process made, and the
// processes and directories a bench registered itself (CRIU's holder, its images), also on failure and
// on Ctrl-C or SIGTERM.
import { rmSync } from 'node:fs';
import { cleanupDaemons, daemonLogs } from '../lab/daemon';
import { killAllEndpoints } from '../lab/endpoint';
import { destroyLans } from '../lab/lan';
import { killAllMulti } from '../lab/multi';
import { destroyTopologies } from '../lab/scenario';

const ownPids = new Set<number>();
const ownPaths = new Set<string>();

/** A process of the bench's own (not a test fixture) that cleanup must kill, by pid. */
export function trackPid(pid: number): void {
  if (pid > 0) ownPids.add(pid);
}

/** The process ended (and was reaped): its pid may be reused, and must not be killed. */
export function untrackPid(pid: number): void {
  ownPids.delete(pid);
}

/** A directory (or file) cleanup must remove. */
export function trackPath(p: string): void {
  ownPaths.add(p);
}

export async function cleanupAll(): Promise<void> {
  for (const pid of ownPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  ownPids.clear();
  for (const p of ownPaths) rmSync(p, { recursive: true, force: true });
  ownPaths.clear();
  await killAllMulti();
  await killAllEndpoints();
  await cleanupDaemons();
  destroyLans();
  destroyTopologies();
}

/** Runs one measurement; on failure prints the daemons' last log lines; cleans up either way. */
export async function measured<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    process.stderr.write(`${daemonLogs(20)}\n`);
    throw err;
  } finally {
    await cleanupAll();
  }
}

/** Cleans up before exiting on SIGINT or SIGTERM. */
export function cleanupOnSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanupAll()
        .catch((err: unknown) => {
          process.stderr.write(`cleanup on ${sig} failed: ${err instanceof Error ? err.message : String(err)}\n`);
        })
        .finally(() => process.exit(130));
    });
  }
}
