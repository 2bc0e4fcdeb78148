// What the benches share: timing helpers, the open-file limit (re-running a bench under `ulimit -n`
// when it is too low, so that the bench and every process it spawns inherit the higher limit), the
// machine description for the report, and how a bench fails without a stack trace on setup problems.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const v = [...values].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** The value below which a share `q` (0..1) of the values lie (nearest rank). */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A failure of the environment, reported without a stack trace. */
export class BenchSetupError extends Error {}

/** How a child process ended, for messages: its exit status, or the signal that ended it. */
export function howExited(status: number | null, signal: NodeJS.Signals | null): string {
  if (status !== null) return `exit status ${status}`;
  return signal ? `killed by ${signal}` : 'no exit status';
}

export function softFdLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
  if (!m) return 0;
  return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

const FD_LIMIT_REFUSED = 97;
export const RAISED_FD_LIMIT = 65536;

export const fdLimitError = (need: number): BenchSetupError =>
  new BenchSetupError(
    `the open-file limit (${softFdLimit()}) is below the ${need} this bench needs, and could not be raised that far (\`ulimit -n ${need}\` needs CAP_SYS_RESOURCE past the hard limit): raise it and run again`,
  );

/**
 * Re-runs `script` (with the current arguments) under `ulimit -n 65536` when the soft limit is below
 * `need` (or, without CAP_SYS_RESOURCE, under the hard limit if that is enough); returns its exit code
 * if it did, undefined if the limit was already enough (or this is the re-run).
 */
export function reexecWithFdLimit(script: string, need: number, marker: string): number | undefined {
  if (softFdLimit() >= need || process.env[marker]) return undefined;
  // Without CAP_SYS_RESOURCE the hard limit stays: then as far as it goes, if that is enough.
  const sh = `ulimit -n ${RAISED_FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; [ "$(ulimit -n)" -ge ${need} ] || exit ${FD_LIMIT_REFUSED}; exec "$@"`;
  const r = spawnSync('bash', ['-c', sh, 'bench', process.execPath, script, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [marker]: '1' },
  });
  if (r.error) throw r.error;
  if (r.status === FD_LIMIT_REFUSED) throw fdLimitError(need);
  return r.status ?? 1;
}

/** Reports a bench failure on stderr and exits 1: setup errors in one line, the rest with their stack. */
export function failBench(name: string, err: unknown): never {
  const text = err instanceof BenchSetupError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`${name} failed: ${text}\n`);
  process.exit(1);
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new BenchSetupError('run as root: pidfd_getfd needs CAP_SYS_PTRACE and TCP_REPAIR needs CAP_NET_ADMIN');
}

export interface Machine {
  kernel: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  /** 1-minute load average when the bench started: other work on the machine skews the figures */
  loadAverage: number;
  node: string;
  date: string;
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    kernel: `${os.type()} ${os.release()}`,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: Math.round(os.loadavg()[0] * 100) / 100,
    node: process.version,
    date: new Date().toISOString(),
  };
}

/** Whether a run's processes made their kernel calls in batches (native/soccr_batch.c): source and destination side. */
export interface NativeBatchUse {
  source: boolean;
  destination: boolean;
}

export type KernelCalls = 'batched' | 'per-call' | 'mixed';

/** The kernel-call path of a set of runs, from each run's processes. */
export function kernelCallsOf(runs: ReadonlyArray<{ nativeBatch: NativeBatchUse }>): KernelCalls {
  const all = runs.flatMap((r) => [r.nativeBatch.source, r.nativeBatch.destination]);
  return all.every((x) => x) ? 'batched' : all.every((x) => !x) ? 'per-call' : 'mixed';
}
