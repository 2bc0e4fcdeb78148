// Drives a multi fixture process (test/fixtures/multi.ts), which holds many TCP connections inside a
// network namespace, each streaming deterministic bytes both ways; and the streams and keys both the
// fixture and the tests use.
import { ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { ConnStatus, MultiConfig, MultiStatus, Offsets } from '../fixtures/multi';
import { SocketAddress, formatAddress, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../daemon/sockaddr';
import { fillStream } from './stream';

export type { ConnStatus, Continuation, MultiConfig, MultiStatus, Offsets } from '../fixtures/multi';

const FIXTURE = join(__dirname, '..', 'fixtures', 'multi.js');

// ---- streams -----------------------------------------------------------------------------------

const BASE_SEED = 0x79;
const PERIOD = 1_000_003; // stream.ts's period (prime)
const PHASE_STEP = 104_729; // prime, so seeds below PERIOD get distinct phases

/** The seed connection i's server end sends (and its client end expects). */
export const serverSeed = (i: number): number => 1000 + i;
/** The seed connection i's client end sends (and its server end expects). */
export const clientSeed = (i: number): number => 2000 + i;

/**
 * Writes bytes [offset, offset+len) of multi stream `seed` into out at outOff. A multi stream is
 * stream.ts's stream BASE_SEED read from a phase of its own ((seed * PHASE_STEP) mod PERIOD): as
 * deterministic as a stream.ts stream, and no two seeds carry the same bytes at the same offset, but
 * all share one 1 MB block, where a stream.ts block per seed would cost each process 200 MB and
 * seconds of hashing for 100 connections.
 */
export function fillMulti(seed: number, offset: number, out: Buffer, outOff: number, len: number): void {
  fillStream(BASE_SEED, offset + ((seed * PHASE_STEP) % PERIOD), out, outOff, len);
}

export function multiBytes(seed: number, offset: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  fillMulti(seed, offset, out, 0, len);
  return out;
}

// ---- keys --------------------------------------------------------------------------------------

/** The address with its ip in canonical text form (dotted quad; RFC 5952, mapped as ::ffff:a.b.c.d). */
export function normalizeAddress(a: SocketAddress): SocketAddress {
  const ip = a.family === 'ipv4' ? formatIPv4(parseIPv4(a.ip)) : formatIPv6(parseIPv6(a.ip));
  return { family: a.family, ip, port: a.port };
}

/**
 * A connection's key: its 4-tuple as its owner sees it, "local-remote" in formatAddress's forms
 * ("10.79.0.100:5000-10.79.0.10:40000", "[fd79::100]:5000-[fd79::10]:40000"; an IPv4-mapped address
 * on an IPv6 socket stays "[::ffff:a.b.c.d]:port"). The fixture's quiesce offsets are keyed so, and
 * adopt mode matches each handed-over socket's `local`/`remote` to them the same way.
 */
export function connKey(local: SocketAddress, remote: SocketAddress): string {
  return `${formatAddress(normalizeAddress(local))}-${formatAddress(normalizeAddress(remote))}`;
}

function unmap(endpoint: string): string {
  const m = /^\[::ffff:(\d+\.\d+\.\d+\.\d+)\]:(\d+)$/i.exec(endpoint);
  return m ? `${m[1]}:${m[2]}` : endpoint;
}

/** The key the other end of this connection has (IPv4-mapped addresses taken as plain IPv4). */
export function peerKey(key: string): string {
  const [local, remote] = key.split('-');
  return `${unmap(remote)}-${unmap(local)}`;
}

function pairingKey(key: string): string {
  const [local, remote] = key.split('-');
  return `${unmap(local)}-${unmap(remote)}`;
}

// ---- checks over two fixtures ------------------------------------------------------------------

/**
 * What is wrong between two fixtures holding the two ends of the same connections, once neither
 * sends any more: a connection without its other end, bytes sent and not (yet) received, a wrong
 * byte, an error or EOF. Empty when every connection carried exactly its bytes both ways.
 */
export function exchangeProblems(a: MultiStatus, b: MultiStatus, allowEof = false): string[] {
  const problems: string[] = [];
  const byKey = new Map(b.connections.map((c) => [pairingKey(c.key), c] as const));
  const check = (c: ConnStatus, side: string): void => {
    if (c.mismatchAt >= 0) problems.push(`${side} ${c.key}: wrong byte at ${c.mismatchAt}`);
    if (c.error) problems.push(`${side} ${c.key}: ${c.error}`);
    if (c.eof && !allowEof) problems.push(`${side} ${c.key}: EOF`);
  };
  for (const c of a.connections) {
    check(c, a.mode);
    const p = byKey.get(peerKey(c.key));
    if (!p) {
      problems.push(`${a.mode} ${c.key}: no other end in ${b.mode}`);
      continue;
    }
    byKey.delete(peerKey(c.key));
    check(p, b.mode);
    if (p.sendSeed !== c.recvSeed || p.recvSeed !== c.sendSeed) problems.push(`${c.key}: seeds ${c.sendSeed}/${c.recvSeed} against ${p.sendSeed}/${p.recvSeed}`);
    if (p.received !== c.sent) problems.push(`${a.mode} ${c.key}: sent ${c.sent}, other end received ${p.received}`);
    if (c.received !== p.sent) problems.push(`${b.mode} ${p.key}: sent ${p.sent}, other end received ${c.received}`);
  }
  for (const p of byKey.values()) problems.push(`${b.mode} ${p.key}: no other end in ${a.mode}`);
  return problems;
}

/**
 * Waits until every byte either side sent has arrived at the other, exactly (neither may be sending
 * by then: stream off, no writes pending). Fails at once on a wrong byte or an error; returns both
 * final statuses.
 */
export async function untilExchanged(a: MultiFixture, b: MultiFixture, timeoutMs: number): Promise<[MultiStatus, MultiStatus]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [sa, sb] = await Promise.all([a.status(), b.status()]);
    const problems = exchangeProblems(sa, sb);
    if (problems.length === 0) return [sa, sb];
    const hard = problems.filter((p) => !/sent \d+, other end received \d+$/.test(p));
    if (hard.length > 0 || Date.now() > deadline) {
      throw new Error(`${hard.length > 0 ? 'streams broken' : `not exchanged within ${timeoutMs} ms`}: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` (+${problems.length - 10} more)` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- the process -------------------------------------------------------------------------------

interface Reply {
  id?: number;
  ok?: boolean;
  error?: string;
  status?: MultiStatus;
  offsets?: Offsets;
  event?: string;
  [k: string]: unknown;
}

const live = new Set<MultiFixture>();

export class MultiFixture {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly netns: string;
  readonly config: MultiConfig;
  private nextId = 1;
  private waiters = new Map<number, (r: Reply) => void>();
  /** Every event the fixture emitted so far, in order. */
  readonly events: Reply[] = [];
  private eventWaiters: Array<() => void> = [];
  stderr = '';

  private constructor(netns: string, cfg: MultiConfig) {
    this.netns = netns;
    this.config = cfg;
    // `ip netns exec` execs node in place: the pid is the fixture's own.
    this.proc = spawn('ip', ['netns', 'exec', netns, process.execPath, FIXTURE, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.proc.pid as number;
    live.add(this);
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let r: Reply;
      try {
        r = JSON.parse(line) as Reply;
      } catch {
        this.stderr += `(stdout) ${line}\n`;
        return;
      }
      if (r.id !== undefined) {
        this.waiters.get(r.id)?.(r);
        this.waiters.delete(r.id);
      } else {
        this.events.push(r);
        for (const w of this.eventWaiters.splice(0)) w();
      }
    });
    this.proc.on('exit', () => {
      live.delete(this);
      for (const w of this.eventWaiters.splice(0)) w();
    });
  }

  /** Starts a fixture in `netns` and waits until it listens (serve, adopt) or has connects under way (clients). */
  static async start(netns: string, cfg: MultiConfig): Promise<MultiFixture> {
    const f = new MultiFixture(netns, cfg);
    await f.waitEvent('ready', 10_000);
    return f;
  }

  private get exited_(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  /** Waits for an event; fails at once on an event named in `failOn`, or if the process ends. */
  async waitEvent(name: string, timeoutMs: number, failOn: string[] = ['error']): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find((e) => e.event === name);
      if (hit) return hit;
      const bad = this.events.find((e) => failOn.includes(e.event ?? ''));
      if (bad) throw new Error(`multi ${this.pid} (${this.config.mode}): ${bad.event}: ${String(bad.error)}`);
      if (this.exited_) throw new Error(`multi ${this.pid} (${this.config.mode}) exited: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`multi ${this.pid} (${this.config.mode}): no '${name}' within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.eventWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits until all the expected connections are established (accepted, connected, or live after hand-over). */
  async waitConnected(timeoutMs: number): Promise<void> {
    await this.waitEvent('connected', timeoutMs, ['error', 'handover-failed']);
  }

  private async request(cmd: string, extra: Record<string, unknown>): Promise<Reply> {
    if (this.exited_) throw new Error(`multi ${this.pid}: '${cmd}' to a process that exited: ${this.stderr}`);
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`multi ${this.pid}: '${cmd}' timed out; stderr: ${this.stderr}`));
      }, 10_000);
      this.waiters.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
    this.proc.stdin?.write(`${JSON.stringify({ id, cmd, ...extra })}\n`);
    const r = await reply;
    if (!r.ok || !r.status) throw new Error(`multi ${this.pid}: '${cmd}' failed: ${r.error}`);
    return r;
  }

  async command(cmd: 'status' | 'write' | 'read' | 'stream' | 'quiesce' | 'resume', extra: Record<string, unknown> = {}): Promise<MultiStatus> {
    return (await this.request(cmd, extra)).status as MultiStatus;
  }

  status(): Promise<MultiStatus> {
    return this.command('status');
  }

  /** Queues `bytes` more of each connection's stream on every connection. */
  write(bytes: number): Promise<MultiStatus> {
    return this.command('write', { bytes });
  }

  read(on: boolean): Promise<MultiStatus> {
    return this.command('read', { on });
  }

  /** Continuous sending on every connection, `bytesPerTick` (at most 64 KiB) each tick. */
  stream(on: boolean, bytesPerTick?: number): Promise<MultiStatus> {
    return this.command('stream', { on, bytesPerTick });
  }

  /** Stops every read and write for good; returns each connection's offsets by its key (see connKey). */
  async quiesce(): Promise<{ status: MultiStatus; offsets: Offsets }> {
    const r = await this.request('quiesce', {});
    return { status: r.status as MultiStatus, offsets: r.offsets ?? {} };
  }

  /** Undoes quiesce (the connections stayed here after all). */
  resume(): Promise<MultiStatus> {
    return this.command('resume');
  }

  /** Polls status until `pred` holds; returns the last status. */
  async until(pred: (s: MultiStatus) => boolean, timeoutMs: number, what: string): Promise<MultiStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status();
      if (pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`multi ${this.pid} (${this.config.mode}): timed out waiting for ${what}: totals ${JSON.stringify(s.totals)}, error ${s.error}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until the totals stop moving for `quietMs` (or `timeoutMs` passes); returns the last status. */
  async settle(quietMs: number, timeoutMs: number): Promise<MultiStatus> {
    const deadline = Date.now() + timeoutMs;
    let last = await this.status();
    let since = Date.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      const s = await this.status();
      if (s.totals.sent !== last.totals.sent || s.totals.received !== last.totals.received) {
        last = s;
        since = Date.now();
      } else if (Date.now() - since >= quietMs) return s;
      if (Date.now() > deadline) return s;
    }
  }

  kill(): void {
    if (!this.exited_) process.kill(this.pid, 'SIGKILL');
  }

  async exited(): Promise<void> {
    if (this.exited_) return;
    await new Promise((r) => this.proc.once('exit', r));
  }
}

/** Kills every multi fixture still running (by pid) and waits for them: the tests' cleanup net. */
export async function killAllMulti(): Promise<void> {
  const all = [...live];
  for (const f of all) f.kill();
  await Promise.all(all.map((f) => f.exited()));
}
