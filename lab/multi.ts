// Drives a multi fixture process (lab/fixtures/multi.ts), which holds many TCP connections inside a
// network namespace, each streaming deterministic bytes both ways; and the streams and keys both the
// fixture and the tests use.
import { join } from 'node:path';
import type { ConnSelection, ConnStatus, MultiConfig, MultiStatus, Offsets } from './fixtures/multi';
import { FixtureProcess, killAllFixtures } from './fixture-process';
import type { SocketAddress } from '../protocol/address';
import { clientSeed, connKey, pairingKey, peerKey, serverSeed } from './multi-data';

export type { ConnSelection, ConnStatus, Continuation, MultiConfig, MultiStatus, Offsets } from './fixtures/multi';

const FIXTURE = join(__dirname, 'fixtures', 'multi.js');

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
    if (p.sendSeed !== c.recvSeed || p.recvSeed !== c.sendSeed)
      problems.push(`${c.key}: seeds ${c.sendSeed}/${c.recvSeed} against ${p.sendSeed}/${p.recvSeed}`);
    if (p.received !== c.sent) problems.push(`${a.mode} ${c.key}: sent ${c.sent}, other end received ${p.received}`);
    if (c.received !== p.sent) problems.push(`${b.mode} ${p.key}: sent ${p.sent}, other end received ${c.received}`);
  }
  for (const p of byKey.values()) problems.push(`${b.mode} ${p.key}: no other end in ${a.mode}`);
  return problems;
}

/**
 * Where a new owner starts the server ends of connections firstIndex .. firstIndex+count-1 that no
 * server ever accepted (they waited in its accept queue): at the start of both streams. `server` is the
 * listener's address, `clientIp` the clients' (their ports from clientPortBase, as the fixture numbers them).
 */
export function queuedOffsets(server: SocketAddress, clientIp: string, firstIndex: number, count: number, clientPortBase = 40_000): Offsets {
  const out: Offsets = {};
  for (let i = firstIndex; i < firstIndex + count; i++) {
    const key = connKey(server, { family: server.family, ip: clientIp, port: clientPortBase + i });
    out[key] = { index: i, sendSeed: serverSeed(i), recvSeed: clientSeed(i), sent: 0, received: 0 };
  }
  return out;
}

/** The statuses of several fixtures (clients that connected at different times) as one: the connections of all. */
export function mergedStatus(all: readonly MultiStatus[]): MultiStatus {
  if (all.length === 1) return all[0];
  const sum = (k: keyof MultiStatus['totals']): number => all.reduce((n, s) => n + s.totals[k], 0);
  return {
    ...all[0],
    expected: all.reduce((n, s) => n + s.expected, 0),
    connections: all.flatMap((s) => s.connections),
    error: all.map((s) => s.error).find((e) => e !== null) ?? null,
    totals: {
      connections: sum('connections'),
      sent: sum('sent'),
      received: sum('received'),
      pending: sum('pending'),
      mismatches: sum('mismatches'),
      errors: sum('errors'),
      eofs: sum('eofs'),
      totalRetrans: sum('totalRetrans'),
    },
  };
}

/**
 * Waits until every byte either side sent has arrived at the other, exactly (neither may be sending
 * by then: stream off, no writes pending). Fails at once on a wrong byte or an error; returns both
 * final statuses. `b` may be several fixtures holding the other ends between them (merged).
 */
export async function untilExchanged(a: MultiFixture, b: MultiFixture | readonly MultiFixture[], timeoutMs: number): Promise<[MultiStatus, MultiStatus]> {
  const others: readonly MultiFixture[] = b instanceof MultiFixture ? [b] : b;
  return untilStatusesExchanged(async () => {
    const [sa, ...sbs] = await Promise.all([a.status(), ...others.map((f) => f.status())]);
    return [sa, mergedStatus(sbs)];
  }, timeoutMs);
}

/**
 * untilExchanged for one fixture that holds both ends of its connections (a self fixture, or the
 * process that adopted both): its server ends (local port `port`) against its client ends.
 */
export function untilSelfExchanged(f: MultiFixture, port: number, timeoutMs: number): Promise<[MultiStatus, MultiStatus]> {
  return untilStatusesExchanged(async () => {
    const s = await f.status();
    const side = (server: boolean): MultiStatus => {
      const connections = s.connections.filter((c) => (c.local.port === port) === server);
      return { ...s, mode: server ? 'serve' : 'clients', connections };
    };
    return [side(true), side(false)];
  }, timeoutMs);
}

async function untilStatusesExchanged(get: () => Promise<[MultiStatus, MultiStatus]>, timeoutMs: number): Promise<[MultiStatus, MultiStatus]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [sa, sb] = await get();
    const problems = exchangeProblems(sa, sb);
    // Bytes written and not yet taken by the kernel are not in `sent` yet: not exchanged until they are.
    const unsent = [sa, sb].filter((s) => s.totals.pending > 0).map((s) => `${s.mode}: ${s.totals.pending} bytes written and not sent yet`);
    if (problems.length === 0 && unsent.length === 0) return [sa, sb];
    const hard = problems.filter((p) => !/sent \d+, other end received \d+$/.test(p));
    problems.push(...unsent);
    if (hard.length > 0 || Date.now() > deadline) {
      throw new Error(
        `${hard.length > 0 ? 'streams broken' : `not exchanged within ${timeoutMs} ms`}: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` (+${problems.length - 10} more)` : ''}`,
      );
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

export class MultiFixture extends FixtureProcess<MultiStatus, Reply> {
  readonly netns: string;
  readonly config: MultiConfig;

  private constructor(netns: string, cfg: MultiConfig) {
    super(FIXTURE, netns, cfg, 50);
    this.netns = netns;
    this.config = cfg;
  }

  /** Starts a fixture in `netns` and waits until it listens (serve, adopt) or has connects under way (clients). */
  static async start(netns: string, cfg: MultiConfig): Promise<MultiFixture> {
    const f = new MultiFixture(netns, cfg);
    await f.waitEvent('ready', 10_000);
    return f;
  }

  protected get label(): string {
    return `multi ${this.pid} (${this.config.mode})`;
  }

  protected describe(s: MultiStatus): string {
    return `totals ${JSON.stringify(s.totals)}, error ${s.error ?? 'none'}`;
  }

  protected progress(s: MultiStatus): { sent: number; received: number } {
    return s.totals;
  }

  /** Waits for an event; fails at once on an event named in `failOn`, or if the process ends. */
  waitEvent(name: string, timeoutMs: number, failOn: string[] = ['error']): Promise<Reply> {
    return this.nextEvent(name, timeoutMs, failOn, (bad) => `${bad.event ?? 'a reply'}: ${bad.error ?? 'no error message'}`);
  }

  /** Waits until all the expected connections are established (accepted, connected, or live after hand-over). */
  async waitConnected(timeoutMs: number): Promise<void> {
    await this.waitEvent('connected', timeoutMs, ['error', 'handover-failed']);
  }

  async command(
    cmd: 'status' | 'write' | 'read' | 'stream' | 'quiesce' | 'resume' | 'gaps' | 'continue-from' | 'accept' | 'close',
    extra: Record<string, unknown> = {},
  ): Promise<MultiStatus> {
    return (await this.request(cmd, extra)).status as MultiStatus;
  }

  /** Closes the connections `select` names (the owner's own close: FIN, or RST with unread bytes). */
  close(select: ConnSelection): Promise<MultiStatus> {
    return this.command('close', { select });
  }

  /** Queues `bytes` more of each connection's stream on every connection (or on those `select` names). */
  write(bytes: number, select?: ConnSelection): Promise<MultiStatus> {
    return this.command('write', { bytes, select });
  }

  /** Reading on or off: on those `select` names, or on every connection (which also forgets earlier selections). */
  read(on: boolean, select?: ConnSelection): Promise<MultiStatus> {
    return this.command('read', { on, select });
  }

  /**
   * Continuous sending, `bytesPerTick` (at most 64 KiB) each tick: on every connection of the sample
   * (see sampleStride), or on exactly those `select` names.
   */
  stream(on: boolean, bytesPerTick?: number, select?: ConnSelection): Promise<MultiStatus> {
    return this.command('stream', { on, bytesPerTick, select });
  }

  /** Stops every read and write for good; returns each connection's offsets by its key (see connKey). */
  async quiesce(): Promise<{ status: MultiStatus; offsets: Offsets }> {
    const r = await this.request('quiesce', {});
    return { status: r.status as MultiStatus, offsets: r.offsets ?? {} };
  }

  /**
   * adopt: where to go on from, for connections not named in the config's continueFrom (so that the
   * new owner can be started before its predecessor quiesces).
   */
  continueFrom(offsets: Offsets): Promise<MultiStatus> {
    return this.command('continue-from', { offsets });
  }

  /** serve: accepting on or off; off, later connections wait in the listener's accept queue while the others stream on. */
  accept(on: boolean): Promise<MultiStatus> {
    return this.command('accept', { on });
  }

  /** Undoes quiesce (the connections stayed here after all). */
  resume(): Promise<MultiStatus> {
    return this.command('resume');
  }

  /** Starts a new window for each connection's maxGapMs (the longest pause between received bytes). */
  resetGaps(): Promise<MultiStatus> {
    return this.command('gaps');
  }
}

/** Kills every multi fixture still running (by pid) and waits for them: the tests' cleanup net. */
export async function killAllMulti(): Promise<void> {
  await killAllFixtures((p) => p instanceof MultiFixture);
}
