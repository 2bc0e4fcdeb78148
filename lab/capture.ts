// Packet capture in a test namespace (tcpdump, installed by the preflight): what actually left through
// an interface while something was supposed to stay silent.
import { ChildProcess, spawn } from 'node:child_process';

const running = new Set<ChildProcess>();

export interface Capture {
  /** Stops the capture and gives one line per packet seen (tcpdump's text form). */
  stop(): Promise<string[]>;
}

/**
 * Starts capturing TCP segments on `iface` inside namespace `ns`; resolves once tcpdump listens (so
 * nothing sent afterwards can be missed), within 10 s.
 */
export async function captureTcp(ns: string, iface: string, filter = 'tcp'): Promise<Capture> {
  // -U -l: every packet's line at once; -n: no name lookups; -p: only what crosses the interface.
  const child = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', iface, '-n', '-l', '-U', '-p', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start in ${ns}: ${err}`)), 10_000);
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (err.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${String(code)}) in ${ns}: ${err}`));
    });
  });
  return {
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
      running.delete(child);
      return out.split('\n').filter((l) => l.trim() !== '');
    },
  };
}

/** Ends every capture still running (from afterEach): each by its own process. */
export function stopCaptures(): void {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
  running.clear();
}
