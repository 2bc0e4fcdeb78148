// Cleanup for the benches that build namespaces: every fixture process (by pid), every daemon (by pid,
// with its state directory and lock table), every namespace (by name) this process made, also on
// failure and on Ctrl-C.
import { cleanupDaemons, daemonLogs } from '../test/support/daemon';
import { killAllEndpoints } from '../test/support/endpoint';
import { destroyLans } from '../test/support/lan';
import { killAllMulti } from '../test/support/multi';
import { destroyTopologies } from '../test/support/scenario';

export async function cleanupAll(): Promise<void> {
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
      cleanupAll().finally(() => process.exit(130));
    });
  }
}
