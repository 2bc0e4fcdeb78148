// The daemon-wide resource budget: how much memory all calls and sessions together may make the daemon
// and the host hold, whatever the per-stream limits (protocol/assembler.ts) let one stream do. Two pools:
//
//   buffered  queue bytes held in the daemon's own memory: the connection a Restore stream is assembling
//             (its queues are buffered until its socket is rebuilt), and the queues a Checkpoint stream
//             has read from a frozen socket and not yet sent.
//   kernel    kernel memory held by rebuilt sockets of restore sessions the daemon holds (not live yet):
//             their restored queue bytes, which the host's tcp_mem is charged for, plus any buffer size
//             the restore forces (SO_SNDBUFFORCE/SO_RCVBUFFORCE) beyond what a socket on this host could
//             get by itself.
//
// A call charges a pool before it buffers or rebuilds anything more; past the pool's limit the charge
// fails with LIMIT (RESOURCE_EXHAUSTED) and changes nothing, so the call rolls back only its own work.
// Every charge is given back exactly once: a stream's when the call ends, a session's when it ends
// (resumed: its sockets are their new owner's; aborted; expired; or the daemon stops).
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { SoccrError } from '../../protocol/errors';
import type { SavedConnection } from '../../protocol/saved-state';

export type BudgetPool = 'buffered' | 'kernel';

export interface BudgetLimits {
  /** queue bytes buffered in the daemon's memory by all streams at once */
  bufferedBytes: number;
  /** kernel memory held by the rebuilt sockets of all held restore sessions at once */
  kernelBytes: number;
}

/** What a pool allows and holds, in bytes. */
export interface PoolUse {
  pool: BudgetPool;
  limit: number;
  used: number;
}

const FLAG: Record<BudgetPool, string> = { buffered: '--max-buffered-bytes', kernel: '--max-held-socket-bytes' };
const WHAT: Record<BudgetPool, string> = {
  buffered: 'queue bytes buffered by streams',
  kernel: 'kernel memory held by rebuilt sockets',
};

export const MiB = 1024 * 1024;

const fmt = (n: number): string => (n >= 10 * MiB ? `${Math.round(n / MiB)} MiB` : `${n} bytes`);

export class ResourceBudget {
  private readonly used: Record<BudgetPool, number> = { buffered: 0, kernel: 0 };

  constructor(readonly limits: BudgetLimits) {}

  /** A new, empty charge against `pool` on behalf of `owner` (for messages: "Restore stream", "session ID"). */
  charge(pool: BudgetPool, owner: string): Charge {
    return new Charge(this, pool, owner);
  }

  usage(): PoolUse[] {
    return [
      { pool: 'buffered', limit: this.limits.bufferedBytes, used: this.used.buffered },
      { pool: 'kernel', limit: this.limits.kernelBytes, used: this.used.kernel },
    ];
  }

  /** @internal Charge's bookkeeping: takes `n` bytes (n may be negative) or throws LIMIT and takes nothing. */
  take(pool: BudgetPool, n: number, owner: string, what: string): void {
    const limit = pool === 'buffered' ? this.limits.bufferedBytes : this.limits.kernelBytes;
    if (n > 0 && this.used[pool] + n > limit) {
      throw new SoccrError(
        'LIMIT',
        `the daemon's budget of ${WHAT[pool]} is used up: ${what} needs ${fmt(n)} more for ${owner}, ${fmt(this.used[pool])} of ${fmt(limit)} are taken ` +
          `(${FLAG[pool]}); wait for other sessions to be resumed or aborted, or raise the limit`,
      );
    }
    this.used[pool] += n;
  }
}

/** One owner's share of a pool: grows and shrinks as the owner buffers or holds more or less; released once. */
export class Charge {
  private bytes = 0;
  private released = false;

  constructor(
    private readonly budget: ResourceBudget,
    readonly pool: BudgetPool,
    readonly owner: string,
  ) {}

  get held(): number {
    return this.bytes;
  }

  /** Takes `n` more bytes; throws LIMIT (and takes nothing) past the pool's limit. */
  add(n: number, what: string): void {
    if (this.released) throw new SoccrError('SESSION_STATE', `${this.owner} has ended: it may hold nothing more`);
    if (n <= 0) return;
    this.budget.take(this.pool, n, this.owner, what);
    this.bytes += n;
  }

  /** Gives `n` bytes back (at most what it holds). */
  sub(n: number): void {
    const m = Math.min(n, this.bytes);
    if (this.released || m <= 0) return;
    this.budget.take(this.pool, -m, this.owner, '');
    this.bytes -= m;
  }

  /** Holds exactly `n` bytes from now on (more: may throw LIMIT and then holds what it held). */
  set(n: number, what: string): void {
    if (n > this.bytes) this.add(n - this.bytes, what);
    else this.sub(this.bytes - n);
  }

  /** Gives everything back; the charge takes nothing more. Idempotent. */
  release(): void {
    if (this.released) return;
    this.sub(this.bytes);
    this.released = true;
  }
}

// ---- what a rebuilt socket costs the kernel ---------------------------------------------------------

/** The largest send and receive buffers a socket on this host can reach without SO_*BUFFORCE (autotuning or setsockopt), as SO_SNDBUF/SO_RCVBUF report them. */
export interface SocketBufferCaps {
  sndBuf: number;
  rcvBuf: number;
}

function sysctlNumbers(name: string): number[] {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'latin1')
      .trim()
      .split(/\s+/)
      .map(Number);
  } catch {
    return [];
  }
}

/** This host's socket buffer caps (the daemon's own namespace): setsockopt doubles net.core.*mem_max; autotuning stops at tcp_*mem's third value. */
export function hostBufferCaps(): SocketBufferCaps {
  const or = (v: number | undefined, d: number): number => (v !== undefined && Number.isFinite(v) && v > 0 ? v : d);
  return {
    sndBuf: Math.max(2 * or(sysctlNumbers('net.core.wmem_max')[0], 212_992), or(sysctlNumbers('net.ipv4.tcp_wmem')[2], 4 * MiB)),
    rcvBuf: Math.max(2 * or(sysctlNumbers('net.core.rmem_max')[0], 212_992), or(sysctlNumbers('net.ipv4.tcp_rmem')[2], 6 * MiB)),
  };
}

/**
 * The kernel memory a connection's rebuilt socket is charged in this budget: its queue bytes (what
 * tcp_mem is charged for while the daemon holds it), plus the saved buffer sizes beyond what a socket on
 * this host could reach by itself, which the restore forces and the socket may then fill.
 */
export function kernelCost(s: Pick<SavedConnection, 'inqLen' | 'outqLen' | 'options'>, caps: SocketBufferCaps): number {
  const over = (v: number, cap: number): number => (Number.isFinite(v) && v > cap ? v - cap : 0);
  return s.inqLen + s.outqLen + over(s.options.sndBuf, caps.sndBuf) + over(s.options.rcvBuf, caps.rcvBuf);
}

// ---- defaults from the machine --------------------------------------------------------------------------

/**
 * Defaults: buffered bytes, an eighth of the machine's memory; held sockets, half of tcp_mem's pressure
 * threshold (the daemon's held sockets alone never push the host's TCP into memory pressure).
 */
export function defaultBudgetLimits(): BudgetLimits {
  const page = 4096;
  const tcpMem = sysctlNumbers('net.ipv4.tcp_mem');
  const pressure = tcpMem.length >= 2 && Number.isFinite(tcpMem[1]) && tcpMem[1] > 0 ? tcpMem[1] * page : totalmem() / 16;
  return { bufferedBytes: Math.floor(totalmem() / 8), kernelBytes: Math.floor(pressure / 2) };
}

/** Parses a byte count: a whole number, optionally with K, M, G or T (powers of 1024; KiB, MB... alike). */
export function parseBytes(what: string, v: string | number): number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${what}: give a whole number of bytes, not ${v}`);
    return v;
  }
  const m = /^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(v);
  if (!m) throw new Error(`${what} ${v}: give bytes, e.g. 1073741824 or 1G`);
  const n = Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  if (!Number.isSafeInteger(n)) throw new Error(`${what} ${v}: too large`);
  return n;
}
