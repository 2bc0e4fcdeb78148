// The connections the migration bench moves, and how it checks them afterwards: N connections on the
// test LAN (lab/lan.ts) between a serve fixture in A (the owner) and a clients fixture in C
// (the peers), a new owner (an adopt fixture in B) waiting for them, and queues filled one of three ways:
//
//  - full (the default workload): every peer streams without pause, through the freeze; the owner read
//    for a while (receive buffers autotune) and then stopped reading, so its receive queues are full; on a
//    third of the connections the owner also streamed while the peer stopped reading, so those send
//    queues are full too.
//  - a fixed size: every connection holds exactly that many unread bytes in the owner's receive queue
//    (its receive buffer set large enough), send queues empty, peers quiet.
//  - light: bytes both ways before the move, and a sample of connections streaming 256 bytes every 5 ms
//    each way (the stall the peers see is measured on it).
//
// Every byte is a byte of a deterministic stream (lab/multi.ts): after the move the new owner
// reads everything, the peers read everything, fresh bytes go both ways, and every connection must have
// carried exactly its streams both ways (no loss, duplicate or corruption, no RST, no FIN).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Lan, SERVICE_V4 } from '../lab/lan';
import { MultiFixture, MultiStatus, Offsets, exchangeProblems, untilExchanged } from '../lab/multi';
import { sleep } from './common';

/**
 * The migration bench's connection counts by default. 10 000 by flag (`--counts 1,100,1000,10000`): with
 * it the whole `npm run bench` no longer fits in about 20 minutes on 2 cores.
 */
export const DEFAULT_COUNTS = [1, 100, 1000];
export const PORT = 5000;
/** Connections that stream steadily in light mode (the rest carry bytes before and after). */
export const SAMPLE = 100;
export const TICK_MS = 5;
export const TICK_BYTES = 256;
/** Bytes every connection sends each way before the move (light), and again after it (all). */
export const EXPLICIT_BYTES = 2048;
/** Full mode: what each streaming connection offers per pump (the queues fill whatever the rate). */
export const FULL_TICK_BYTES = 64 * 1024;
/** Full mode: how long the owner reads while the peers stream, so that receive buffers autotune. */
export const WARM_MS = 1500;
/** Full mode: a third of the connections also have full send queues at the owner. */
export const SEND_FULL_STRIDE = 3;
/** How long queues may take to fill (or settle), at most. */
const FILL_TIMEOUT_MS = 30_000;

/** 'full', 'light', or bytes in every connection's receive queue. */
export type QueueFill = 'full' | 'light' | number;

export const fillName = (f: QueueFill): string => (typeof f === 'number' ? (f === 0 ? '0 B' : f % 1024 === 0 ? `${f / 1024} KiB` : `${f} B`) : f);

/**
 * The largest autotuned buffer of the owner and the peers: 256 KiB, and less with many connections
 * (256 MiB over N, at least 32 KiB), so that queues are hundreds of KiB each and the kernel's TCP memory
 * stays bounded (both namespaces hold the queues during the move, and the peers' send queues are full
 * too). A new namespace takes the host's tcp_rmem (32 MiB here): unbounded, 100 connections autotuned to
 * 13 MB each.
 */
export function bufferMaxFor(n: number): number {
  return Math.max(32 << 10, Math.min(256 << 10, Math.floor((256 << 20) / n / 1024) * 1024));
}

/** Per-namespace sysctls for 10 000 connections: accept backlog and SYN queue; the autotuning bound. */
export function tuneNamespace(ns: string, bufferMax?: number): void {
  const buffers = bufferMax ? [`net.ipv4.tcp_rmem=4096 ${Math.min(131072, bufferMax)} ${bufferMax}`, `net.ipv4.tcp_wmem=4096 16384 ${bufferMax}`] : [];
  spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.core.somaxconn=65535', 'net.ipv4.tcp_max_syn_backlog=65535', ...buffers], { stdio: 'ignore' });
}

/** Bytes in the receive and send queues of the service port's established connections in namespace `ns` (ss). */
export function queueBytesIn(ns: string, port = PORT): { recv: number; send: number; connections: number } {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-tnH', 'state', 'established', `( sport = :${port} )`], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    timeout: 30_000,
  });
  let recv = 0;
  let send = 0;
  let connections = 0;
  for (const line of (r.stdout ?? '').split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s/.exec(line);
    if (!m) continue;
    recv += Number(m[1]);
    send += Number(m[2]);
    connections++;
  }
  return { recv, send, connections };
}

/** Waits until the queues in namespace `ns` stop growing (three polls within 1%, bounded); returns them. */
export async function untilQueuesFull(ns: string): Promise<{ recv: number; send: number }> {
  let last = { recv: 0, send: 0 };
  let steady = 0;
  const deadline = Date.now() + FILL_TIMEOUT_MS;
  while (Date.now() < deadline && steady < 3) {
    await sleep(300);
    const q = queueBytesIn(ns);
    const grew = q.recv + q.send - (last.recv + last.send);
    steady = grew <= 0.01 * (q.recv + q.send) ? steady + 1 : 0;
    last = q;
  }
  return last;
}

/** Ticks between two pumps of a connection outside the sample (lab/fixtures/multi.ts): 100 pumps a tick. */
export const idlePollTicksFor = (n: number): number => Math.max(10, Math.ceil(n / 100));

/** The connections of one run, held by their owner in A, waiting to move to the new owner in B. */
export class Workload {
  /** the owner's offsets at its hand-off (after prepare) */
  offsets: Offsets = {};

  private constructor(
    readonly lan: Lan,
    readonly n: number,
    readonly fill: QueueFill,
    readonly server: MultiFixture,
    readonly clients: MultiFixture,
    readonly receiver: MultiFixture,
    readonly deliverPath: string,
    /** light mode: every stride-th connection streams */
    readonly stride: number,
  ) {}

  /**
   * A LAN, the owner, the peers and the new owner, all N connections established. `handoff`: the owner
   * keeps its listener open, and the new owner waits beside it in A (one host, one namespace) to take
   * the listener with the connections (Handoff), polling every millisecond as a real server's event loop
   * would react at once.
   */
  static async start(lan: Lan, n: number, fill: QueueFill, dir: string, handoff = false): Promise<Workload> {
    for (const role of ['A', 'B', 'C'] as const) tuneNamespace(lan.ns[role], role === 'B' ? undefined : bufferMaxFor(n));
    const stride = Math.max(1, Math.ceil(n / SAMPLE));
    const rate = fill === 'light' ? TICK_BYTES : FULL_TICK_BYTES;
    // Outside the sample, about 100 connections are pumped per tick: at 10 000 a tick of 1000 pumps takes
    // longer than the tick, and commands starve on a loaded machine.
    const common = { sampleStride: stride, tickMs: TICK_MS, bytesPerTick: rate, idlePollTicks: idlePollTicksFor(n) };
    const connectMs = 30_000 + 10 * n;
    // A fixed receive queue needs a receive buffer that holds it (a set size, so no autotuning).
    const buffers = typeof fill === 'number' && fill > 32 * 1024 ? { rcvBuf: 2 * fill + 128 * 1024 } : {};
    const listener = handoff ? { acceptMore: 1 } : {};
    const server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: PORT, count: n, ...common, ...buffers, ...listener });
    const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: n, connectTimeoutMs: connectMs, ...common });
    await Promise.all([server.waitConnected(connectMs), clients.waitConnected(connectMs)]);
    const deliverPath = path.join(dir, `deliver-${n}-${Date.now()}.sock`);
    const receiver = await MultiFixture.start(handoff ? lan.ns.A : lan.ns.B, {
      mode: 'adopt',
      unixPath: deliverPath,
      count: n,
      continueFrom: {},
      streaming: fill === 'light',
      ...common,
      ...(fill === 'light' || handoff ? { tickMs: 1 } : {}),
      ...listener,
    });
    return new Workload(lan, n, fill, server, clients, receiver, deliverPath, stride);
  }

  /** Light mode: bytes both ways, then the sample streams (the caller settles and measures gaps). */
  async startLight(): Promise<void> {
    await Promise.all([this.server.write(EXPLICIT_BYTES), this.clients.write(EXPLICIT_BYTES)]);
    await Promise.all([this.server.stream(true), this.clients.stream(true)]);
  }

  /** Fills the queues (full or fixed size) and waits until they stand. Returns the owner's queue bytes then. */
  async fillQueues(): Promise<{ recv: number; send: number }> {
    const { fill, n } = this;
    if (fill === 'light') throw new Error('fillQueues: light mode fills no queue');
    if (fill === 'full') {
      const all = { stride: 1 };
      const third = { stride: SEND_FULL_STRIDE };
      await this.clients.stream(true, FULL_TICK_BYTES, all);
      await this.server.stream(true, FULL_TICK_BYTES, third);
      await sleep(WARM_MS);
      await Promise.all([this.server.read(false), this.clients.read(false, third)]);
      return untilQueuesFull(this.lan.ns.A);
    }
    if (fill > 0) {
      await this.server.read(false);
      await this.clients.write(fill);
      const deadline = Date.now() + FILL_TIMEOUT_MS;
      for (;;) {
        const q = queueBytesIn(this.lan.ns.A);
        if (q.recv >= n * fill) return q;
        if (Date.now() > deadline) throw new Error(`${fillName(fill)} queues: only ${q.recv} of ${n * fill} bytes arrived within ${FILL_TIMEOUT_MS} ms`);
        await sleep(100);
      }
    }
    return queueBytesIn(this.lan.ns.A);
  }

  /** The application's own hand-off: the old owner stops its I/O, and the new one learns the offsets. */
  async handOff(): Promise<void> {
    const { offsets } = await this.server.quiesce();
    this.offsets = offsets;
    await this.receiver.continueFrom(offsets);
  }

  /**
   * After the move (the new owner live): the old owner goes, everything queued is read on both sides,
   * fresh bytes go both ways, and every connection must be exact. Throws what is wrong otherwise.
   */
  async verify(timeoutMs: number): Promise<{ clients: MultiStatus; owner: MultiStatus }> {
    const { n } = this;
    this.server.kill();
    await this.server.exited();
    // The peers stop streaming and read again (unselective calls clear the per-connection settings).
    await Promise.all([this.clients.stream(false), this.receiver.stream(false)]);
    await Promise.all([this.clients.read(true), this.receiver.read(true)]);
    await Promise.all([this.clients.write(EXPLICIT_BYTES), this.receiver.write(EXPLICIT_BYTES)]);
    const [cs, rs] = await untilExchanged(this.clients, this.receiver, timeoutMs);
    const problems = exchangeProblems(cs, rs);
    const o = this.offsets;
    const moved = rs.connections.filter((c) => c.received > (o[c.key]?.received ?? Infinity) && c.sent > (o[c.key]?.sent ?? Infinity)).length;
    if (cs.connections.length !== n || rs.connections.length !== n || problems.length > 0 || moved !== n) {
      throw new Error(
        `N=${n} ${fillName(this.fill)}: migration not exact: clients ${cs.connections.length}, new owner ${rs.connections.length}, carried traffic after the move ${moved}; ${problems.slice(0, 5).join('; ')}`,
      );
    }
    return { clients: cs, owner: rs };
  }
}
