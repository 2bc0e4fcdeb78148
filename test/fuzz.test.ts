// Hostile Restore input against a real soccrd (issue 5). More than 10,000 Restore streams built from real
// checkpoints of live connections and from synthetic ones, then mutated: flipped, cut and stretched
// chunks, wrong offsets, indexes and counts, dropped, duplicated and reordered frames, truncation at every
// frame and at every byte of a frame, absurd states (MSS, ports, families, window scales, sequence numbers,
// queue lengths up to 4 GiB), malformed session headers and lock tuples, undecodable bytes, oversized
// frames, bad restore options (no such namespace, a file that is not one, a FIFO). Every call must end
// with INVALID_ARGUMENT, DATA_LOSS, RESOURCE_EXHAUSTED, FAILED_PRECONDITION or, where the mutation left a
// valid stream, OK (then the session is held, never live, and is aborted) — never INTERNAL, UNKNOWN, a
// hang or a crash; and the daemon is left as it was found: serving, with the same open fds, no active
// session, no lock entry and no socket in the target namespace.
//
// The same again (truncations and random mutations, 2,650 streams) as a non-root allowed caller: uid
// 65534, let in by --allow-uid, its policy allowing the target namespace, a hand-over directory of its own
// and the real connections' mark. Its calls reach the daemon through a relay that runs as that uid
// (test/fixtures/nobody-relay.ts, through setpriv), so the daemon sees it on every call; go-live is on, and
// the relay is also the receiver each valid stream goes live at (it resets them). Every call ends as for
// root, or PERMISSION_DENIED where the policy refuses (a mark, buffer sizes); valid ones are RESUMED with
// every connection delivered. After each run the daemon's peak RSS (VmHWM) is printed and bounded.
//
// Then one test per limit of the restore input: connections per stream, bytes per queue, bytes per
// session, bytes per chunk and per gRPC message. Exceeding any of them is RESOURCE_EXHAUSTED.
//
// FUZZ_SEED=n reproduces a run (the seed is printed); FUZZ_STREAMS=n and FUZZ_NOBODY_STREAMS=n change how many random streams each run has.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { FrameMsg, RestoreOptions, SessionInfoMsg, SessionState, SoccrClient, isServiceError, sessionStateName } from '../client/client';
import { silentLogger } from '../daemon/log';
import { DEFAULT_LIMITS } from '../protocol/assembler';
import { MAX_CHUNK, batchFrames, frameKind, unpackFrames } from '../protocol/frames';
import { AddressFamily, QueueKind, SessionHeaderMsg } from '../protocol/messages';
import { addressToMsg } from '../protocol/address';
import { SERVICE_NAME, loadPackageDefinition } from '../protocol/proto';
import { SocketRepairService } from '../daemon/server/service';
import { SessionManager } from '../daemon/custody/sessions';
import { OPTIONS_NOT_CARRIED, STATE_VERSION, SavedConnection, TcpState } from '../protocol/saved-state';
import { stateToObject } from '../protocol/state-codec';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { killAllEndpoints } from '../lab/endpoint';
import { Topology, leftoverNamespaces, run, lockEntries, tcpSockets } from '../lab/netns';
import { KiB, MiB, Pair, USER_OPTIONS, connectPair, destroyTopologies, sleep } from '../lab/scenario';
import { NOBODY, OtherUserCopy } from './support/other-user';

// ---- what a call may end with ----------------------------------------------------------------------

const ALLOWED = new Set<number>([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.DATA_LOSS,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.FAILED_PRECONDITION,
]);
/** a call that got no answer within this long counts as a hang */
const CALL_TIMEOUT_MS = 30_000;
const HANG = -1;
const LOCAL_ERROR = -2;

interface Outcome {
  code: grpc.status | typeof HANG | typeof LOCAL_ERROR;
  details: string;
  session?: SessionInfoMsg;
}

const codeName = (c: number): string => (c === HANG ? 'HANG' : c === LOCAL_ERROR ? 'LOCAL_ERROR' : (grpc.status[c] ?? `STATUS_${c}`));

function withTimeout(p: Promise<Outcome>, ms: number): Promise<Outcome> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome>((resolve) => {
    t = setTimeout(() => resolve({ code: HANG, details: `no answer within ${ms} ms` }), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

// ---- a deterministic random source -------------------------------------------------------------------

class Rand {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  /** mulberry32 */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  u32(): number {
    return (this.int(0x10000) * 0x10000 + this.int(0x10000)) >>> 0;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

// ---- building streams ---------------------------------------------------------------------------------

const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

interface Conn {
  id: string;
  fd: number;
  state: SavedConnection;
}

/** A session's frames as the daemon streams them, with queue chunks of `chunk` bytes (any size up to 1 MiB is valid). */
function buildFrames(header: SessionHeaderMsg, conns: Conn[], chunk: number): FrameMsg[] {
  const frames: FrameMsg[] = [{ session: header }];
  conns.forEach((c, index) => {
    frames.push({ connection: { index, id: c.id, fd: c.fd, state: stateToObject({ ...c.state, recvQueue: Buffer.alloc(0), sendQueue: Buffer.alloc(0) }) } });
    for (const [queue, bytes] of [
      [QueueKind.RECV, c.state.recvQueue],
      [QueueKind.SEND, c.state.sendQueue],
    ] as const) {
      for (let off = 0; off < bytes.length; off += chunk)
        frames.push({ chunk: { index, queue, offset: off, data: bytes.subarray(off, Math.min(off + chunk, bytes.length)) } });
    }
    frames.push({ end: { index, recvSha256: sha256(c.state.recvQueue), sendSha256: sha256(c.state.sendQueue) } });
  });
  frames.push({ streamEnd: { connectionCount: conns.length } });
  return frames;
}

/** The same stream with its queue chunks cut into pieces of at most `size` bytes (still valid). */
function rechunk(frames: FrameMsg[], size: number): FrameMsg[] {
  return frames.flatMap((f): FrameMsg[] => {
    const c = f.chunk;
    if (!c || c.data.length <= size) return [f];
    const out: FrameMsg[] = [];
    for (let off = 0; off < c.data.length; off += size)
      out.push({ chunk: { ...c, offset: c.offset + off, data: c.data.subarray(off, Math.min(off + size, c.data.length)) } });
    return out;
  });
}

type Flavor = 'ipv4' | 'ipv6' | 'mapped';

const ADDRESSES: Record<Flavor, { family: 'ipv4' | 'ipv6'; local: string; remote: string }> = {
  ipv4: { family: 'ipv4', local: '10.77.0.1', remote: '10.77.0.2' },
  ipv6: { family: 'ipv6', local: 'fd77::1', remote: 'fd77::2' },
  mapped: { family: 'ipv6', local: '::ffff:10.77.0.1', remote: '::ffff:10.77.0.2' },
};

/**
 * A connection the target namespace can take (its service address is there): consistent sequence
 * numbers and window, random queues, random ports so that two restored at once rarely collide.
 */
function synthConn(r: Rand, flavor: Flavor, state: TcpState, recvLen: number, sendLen: number, unsentLen: number): SavedConnection {
  const a = ADDRESSES[flavor];
  const inqSeq = r.u32();
  return {
    version: STATE_VERSION,
    state,
    socketFamily: a.family,
    local: { family: a.family, ip: a.local, port: r.range(20000, 60999) },
    remote: { family: a.family, ip: a.remote, port: r.range(1024, 65535) },
    inqSeq,
    outqSeq: r.u32(),
    inqLen: recvLen,
    outqLen: sendLen,
    unsentLen,
    mssClamp: 1400,
    tcpOptions: 7,
    sndWscale: 7,
    rcvWscale: 7,
    timestamp: r.u32(),
    window: { sndWl1: inqSeq, sndWnd: 65535, maxWindow: 65535, rcvWnd: 65535, rcvWup: inqSeq },
    recvQueue: r.bytes(recvLen),
    sendQueue: r.bytes(sendLen),
    options: {
      reuseAddr: r.chance(0.5),
      noDelay: true,
      cork: false,
      keepAlive: r.chance(0.5),
      keepIdle: 7200,
      keepIntvl: 75,
      keepCnt: 9,
      userTimeout: 0,
      congestion: r.pick(['', 'cubic', 'reno']),
      sndBuf: 87040,
      rcvBuf: 131072,
      tos: 0,
      mark: 0,
      bufLock: 0,
      ...OPTIONS_NOT_CARRIED,
    },
  };
}

function synthHeader(r: Rand, conns: Conn[], tuples: boolean): SessionHeaderMsg {
  const h: SessionHeaderMsg = {
    sessionId: `synthetic-${r.u32().toString(16)}`,
    leaseExpiresUnixMs: Date.now() + 60_000,
    connectionCount: conns.length,
    pid: 4242,
    hostname: 'fuzz',
    createdUnixMs: Date.now(),
    tuples: [],
    skipped: [],
  };
  if (tuples) {
    h.tuples = conns.map((c) => ({
      local: addressToMsg(c.state.local),
      remote: addressToMsg(c.state.remote),
    }));
  }
  return h;
}

// ---- mutations ----------------------------------------------------------------------------------------

type Plain = Record<string, unknown>;

function cloneValue<T>(v: T): T {
  if (Buffer.isBuffer(v)) return Buffer.from(v) as T;
  if (v instanceof Uint8Array) return Buffer.from(v) as T;
  if (Array.isArray(v)) return v.map((x: unknown) => cloneValue(x)) as T;
  if (v !== null && typeof v === 'object') {
    const o: Plain = {};
    for (const [k, x] of Object.entries(v as Plain)) o[k] = cloneValue(x);
    return o as T;
  }
  return v;
}

function indicesOf(fr: FrameMsg[], kind: string): number[] {
  const out: number[] = [];
  fr.forEach((f, i) => {
    if (frameKind(f) === kind) out.push(i);
  });
  return out;
}

/** A copy of `fr` in which frame i (deep-copied) was changed by `fn`. */
function edit(fr: FrameMsg[], i: number, fn: (f: Plain) => void): FrameMsg[] {
  const out = fr.slice();
  const c = cloneValue(fr[i]) as unknown as Plain;
  fn(c);
  out[i] = c;
  return out;
}

const GARBAGE_IPS = [
  '',
  '999.1.1.1',
  '10.77.0.1 . 1 . 10.77.0.2 . 2 } ; flush ruleset ; add element inet x conn4 {',
  'fe80::1%lo',
  '::ffff:10.77.0.1',
  '10.77.0.1',
  'fd77::1',
  '10.77.0.2',
  '0.0.0.0',
  '255.255.255.255',
  '224.0.0.1',
  '127.0.0.1',
  '::',
  '::1',
  'ff02::1',
  'a'.repeat(300),
  '1.2.3.4',
  '10.77.0.1\n',
];

const ODD_U32 = [0, 1, 2, 63, 64, 255, 65535, 65536, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const ODD_I32 = [-0x80000000, -2, -1, 0, 1, 127, 128, 255, 256, 32767, 32768, 0x7fffffff];

/** Absurd values for each field of a ConnectionState, by path. */
function stateGarbage(r: Rand, path: string): unknown {
  switch (path) {
    case 'version':
      return r.pick([0, 2, 0xffffffff]);
    case 'state':
      return r.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 99, 0xffffffff]);
    case 'socketFamily':
    case 'local.family':
    case 'remote.family':
      return r.pick([0, 1, 2, 3, 99, 0xffffffff]);
    case 'local.ip':
    case 'remote.ip':
      return r.pick(GARBAGE_IPS);
    case 'local.port':
    case 'remote.port':
      return r.pick([0, 1, 5001, 65535, 65536, 0xffffffff]);
    case 'inqLen':
    case 'outqLen':
      return r.pick([1, 2, 1000, MAX_CHUNK, MAX_CHUNK + 1, DEFAULT_LIMITS.maxQueueBytes, DEFAULT_LIMITS.maxQueueBytes + 1, 0x80000000, 0xffffffff]);
    case 'unsentLen':
      return r.pick([1, 1000, 0x7fffffff, 0xffffffff]);
    case 'mssClamp':
      return r.pick([0, 1, 63, 64, 536, 65535, 65536, 0xffffffff]);
    case 'sndWscale':
    case 'rcvWscale':
      return r.pick([0, 14, 15, 16, 255, 0xffffffff]);
    case 'tcpOptions':
      return r.pick([0, 1, 2, 4, 7, 8, 0xff, 0xffffffff]);
    case 'inqSeq':
    case 'outqSeq':
    case 'timestamp':
    case 'window.sndWl1':
    case 'window.sndWnd':
    case 'window.maxWindow':
    case 'window.rcvWnd':
    case 'window.rcvWup':
      return r.chance(0.5) ? r.u32() : r.pick(ODD_U32);
    case 'options.congestion':
      return r.pick(['', 'reno', 'cubic', 'nonexistent', 'UPPER', 'a'.repeat(16), 'x;y', 'bbr', 'dctcp', 'tcp_reno']);
    case 'options.reuseAddr':
    case 'options.noDelay':
    case 'options.cork':
    case 'options.keepAlive':
      return r.chance(0.5);
    case 'recvQueue':
    case 'sendQueue':
      return r.bytes(r.range(1, 64));
    default:
      return r.pick(ODD_I32);
  }
}

const STATE_PATHS = [
  'version',
  'state',
  'socketFamily',
  'local.family',
  'local.ip',
  'local.port',
  'remote.family',
  'remote.ip',
  'remote.port',
  'inqSeq',
  'outqSeq',
  'inqLen',
  'outqLen',
  'unsentLen',
  'mssClamp',
  'tcpOptions',
  'sndWscale',
  'rcvWscale',
  'timestamp',
  'window.sndWl1',
  'window.sndWnd',
  'window.maxWindow',
  'window.rcvWnd',
  'window.rcvWup',
  'recvQueue',
  'sendQueue',
  'options.reuseAddr',
  'options.noDelay',
  'options.cork',
  'options.keepAlive',
  'options.keepIdle',
  'options.keepIntvl',
  'options.keepCnt',
  'options.userTimeout',
  'options.congestion',
  'options.sndBuf',
  'options.rcvBuf',
  'options.tos',
  'options.mark',
  'options.bufLock',
];

function setPath(o: Plain, path: string, v: unknown): void {
  const parts = path.split('.');
  let cur = o;
  for (const p of parts.slice(0, -1)) {
    if (cur[p] === null || typeof cur[p] !== 'object') cur[p] = {};
    cur = cur[p] as Plain;
  }
  cur[parts[parts.length - 1]] = v;
}

type Mutation = (r: Rand, fr: FrameMsg[], bases: Base[]) => { frames: FrameMsg[]; label: string } | undefined;

const MUTATIONS: Array<[weight: number, name: string, fn: Mutation]> = [
  [
    6,
    'flip chunk byte',
    (r, fr) => {
      const is = indicesOf(fr, 'chunk').filter((i) => (fr[i].chunk?.data.length ?? 0) > 0);
      if (!is.length) return undefined;
      const i = r.pick(is);
      return {
        frames: edit(fr, i, (f) => {
          const d = (f.chunk as Plain).data as Buffer;
          d[r.int(d.length)] ^= 1 << r.int(8);
        }),
        label: `flip a bit in chunk frame ${i}`,
      };
    },
  ],
  [
    3,
    'cut chunk',
    (r, fr) => {
      const is = indicesOf(fr, 'chunk').filter((i) => (fr[i].chunk?.data.length ?? 0) > 0);
      if (!is.length) return undefined;
      const i = r.pick(is);
      const n = r.int((fr[i].chunk as { data: Buffer }).data.length);
      return {
        frames: edit(fr, i, (f) => ((f.chunk as Plain).data = ((f.chunk as Plain).data as Buffer).subarray(0, n))),
        label: `cut chunk frame ${i} to ${n} bytes`,
      };
    },
  ],
  [
    2,
    'stretch chunk',
    (r, fr) => {
      const is = indicesOf(fr, 'chunk');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const extra = r.bytes(r.range(1, 100));
      return {
        frames: edit(fr, i, (f) => ((f.chunk as Plain).data = Buffer.concat([(f.chunk as Plain).data as Buffer, extra]))),
        label: `stretch chunk frame ${i} by ${extra.length}`,
      };
    },
  ],
  [
    3,
    'chunk offset',
    (r, fr) => {
      const is = indicesOf(fr, 'chunk');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const old = (fr[i].chunk as { offset: number }).offset;
      const v = r.pick([old + 1, Math.max(0, old - 1), r.u32(), 2 ** 40, Number.MAX_SAFE_INTEGER, 0, old + 4096]);
      return { frames: edit(fr, i, (f) => ((f.chunk as Plain).offset = v)), label: `chunk frame ${i} offset ${v}` };
    },
  ],
  [
    2,
    'chunk index',
    (r, fr) => {
      const is = indicesOf(fr, 'chunk');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const v = r.pick([1, 2, 0xffffffff, r.u32()]);
      return {
        frames: edit(fr, i, (f) => ((f.chunk as Plain).index = (((f.chunk as Plain).index as number) + v) >>> 0)),
        label: `chunk frame ${i} index +${v}`,
      };
    },
  ],
  [
    2,
    'chunk queue',
    (r, fr) => {
      const is = indicesOf(fr, 'chunk');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const v = r.pick([0, 1, 2, 3, 255, -1]);
      return { frames: edit(fr, i, (f) => ((f.chunk as Plain).queue = v)), label: `chunk frame ${i} queue ${v}` };
    },
  ],
  [
    3,
    'checksum',
    (r, fr) => {
      const is = indicesOf(fr, 'end');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const key = r.pick(['recvSha256', 'sendSha256']);
      const how = r.pick(['flip', 'empty', 'short', 'long']);
      return {
        frames: edit(fr, i, (f) => {
          const e = f.end as Plain;
          const b = e[key] as Buffer;
          if (how === 'flip' && b.length) b[r.int(b.length)] ^= 0x80;
          else if (how === 'empty') e[key] = Buffer.alloc(0);
          else if (how === 'short') e[key] = b.subarray(0, 31);
          else e[key] = Buffer.concat([b, b]);
        }),
        label: `end frame ${i} ${key} ${how}`,
      };
    },
  ],
  [
    2,
    'end index',
    (r, fr) => {
      const is = indicesOf(fr, 'end');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const v = r.pick([1, 0xffffffff, r.u32()]);
      return { frames: edit(fr, i, (f) => ((f.end as Plain).index = (((f.end as Plain).index as number) + v) >>> 0)), label: `end frame ${i} index +${v}` };
    },
  ],
  [
    2,
    'connection index',
    (r, fr) => {
      const is = indicesOf(fr, 'connection');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const v = r.pick([1, 0xffffffff, r.u32()]);
      return {
        frames: edit(fr, i, (f) => ((f.connection as Plain).index = (((f.connection as Plain).index as number) + v) >>> 0)),
        label: `connection frame ${i} index +${v}`,
      };
    },
  ],
  [
    1,
    'connection id',
    (r, fr) => {
      const is = indicesOf(fr, 'connection');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const v = r.pick(['', '\u0000', '../../etc/passwd', 'x'.repeat(r.pick([1000, 5000, 200_000]))]);
      return { frames: edit(fr, i, (f) => ((f.connection as Plain).id = v)), label: `connection frame ${i} id of ${v.length} chars` };
    },
  ],
  [
    3,
    'session count',
    (r, fr) => {
      const is = indicesOf(fr, 'session');
      if (!is.length) return undefined;
      const i = is[0];
      const n = (fr[i].session as SessionHeaderMsg).connectionCount;
      const v = r.pick([0, Math.max(0, n - 1), n + 1, 2 * n + 1, DEFAULT_LIMITS.maxConnections, DEFAULT_LIMITS.maxConnections + 1, 0xffffffff]);
      return { frames: edit(fr, i, (f) => ((f.session as Plain).connectionCount = v)), label: `session connection_count ${v}` };
    },
  ],
  [
    2,
    'stream end count',
    (r, fr) => {
      const is = indicesOf(fr, 'streamEnd');
      if (!is.length) return undefined;
      const i = is[0];
      const v = r.pick([0, 1, 2, 0xffffffff]);
      return { frames: edit(fr, i, (f) => ((f.streamEnd as Plain).connectionCount = v)), label: `stream_end connection_count ${v}` };
    },
  ],
  [
    2,
    'session fields',
    (r, fr) => {
      const is = indicesOf(fr, 'session');
      if (!is.length) return undefined;
      const which = r.pick(['sessionId', 'hostname', 'pid', 'createdUnixMs', 'leaseExpiresUnixMs']);
      const v = which === 'sessionId' || which === 'hostname' ? r.pick(['', 'x'.repeat(r.pick([100, 10_000, 300_000]))]) : r.pick([0, -1, 0xffffffff, 2 ** 52]);
      return {
        frames: edit(fr, is[0], (f) => ((f.session as Plain)[which] = which === 'pid' ? Math.abs(v as number) % 2 ** 32 : v)),
        label: `session ${which} = ${String(v).slice(0, 20)}`,
      };
    },
  ],
  [
    4,
    'tuples',
    (r, fr) => {
      const is = indicesOf(fr, 'session');
      if (!is.length) return undefined;
      const how = r.pick(['none', 'empty', 'drop', 'extra', 'swap', 'ip', 'family', 'port', 'reverse', 'many']);
      return {
        frames: edit(fr, is[0], (f) => {
          const h = f.session as Plain;
          const t = ((h.tuples as Plain[] | undefined) ?? []).slice();
          const any = (): Plain =>
            t.length ? t[r.int(t.length)] : { local: { family: 1, ip: '10.77.0.1', port: 1 }, remote: { family: 1, ip: '10.77.0.2', port: 2 } };
          if (how === 'none') delete h.tuples;
          else if (how === 'empty') h.tuples = [];
          else if (how === 'drop') h.tuples = t.slice(1);
          else if (how === 'extra') h.tuples = [...t, cloneValue(any())];
          else if (how === 'swap') h.tuples = t.reverse();
          else if (how === 'reverse') h.tuples = t.map((x) => ({ local: x.remote, remote: x.local }));
          else if (how === 'many')
            h.tuples = Array.from({ length: r.pick([1000, 70_000]) }, (_, k) => ({
              local: { family: 1, ip: '10.77.0.1', port: 1 + (k % 65535) },
              remote: { family: 1, ip: '10.77.0.2', port: 7 },
            }));
          else {
            const x = cloneValue(any());
            const end = (r.chance(0.5) ? x.local : x.remote) as Plain;
            if (how === 'ip') end.ip = r.pick(GARBAGE_IPS);
            else if (how === 'family') end.family = r.pick([0, 3, 1, 2]);
            else end.port = r.pick([0, 65536, 0xffffffff]);
            h.tuples = t.length ? t.map((y) => (y === t[0] ? x : y)) : [x];
          }
        }),
        label: `session tuples: ${how}`,
      };
    },
  ],
  [
    14,
    'state field',
    (r, fr) => {
      const is = indicesOf(fr, 'connection');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const path = r.pick(STATE_PATHS);
      const v = stateGarbage(r, path);
      return {
        frames: edit(fr, i, (f) => {
          const c = f.connection as Plain;
          if (c.state === null || typeof c.state !== 'object') c.state = {};
          setPath(c.state as Plain, path, v);
        }),
        label: `connection frame ${i} state.${path} = ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : Buffer.isBuffer(v) ? `${v.length} bytes` : String(v)}`,
      };
    },
  ],
  [
    2,
    'state part missing',
    (r, fr) => {
      const is = indicesOf(fr, 'connection');
      if (!is.length) return undefined;
      const i = r.pick(is);
      const part = r.pick(['state', 'local', 'remote', 'options', 'window']);
      return {
        frames: edit(fr, i, (f) => {
          const c = f.connection as Plain;
          if (part === 'state') c.state = null;
          else if (c.state && typeof c.state === 'object') (c.state as Plain)[part] = null;
        }),
        label: `connection frame ${i} without ${part}`,
      };
    },
  ],
  [
    4,
    'drop frame',
    (r, fr) => {
      if (!fr.length) return undefined;
      const i = r.int(fr.length);
      return { frames: fr.filter((_, k) => k !== i), label: `drop frame ${i} (${frameKind(fr[i])})` };
    },
  ],
  [
    3,
    'duplicate frame',
    (r, fr) => {
      if (!fr.length) return undefined;
      const i = r.int(fr.length);
      const at = r.chance(0.5) ? i + 1 : r.int(fr.length + 1);
      const out = fr.slice();
      out.splice(at, 0, fr[i]);
      return { frames: out, label: `duplicate frame ${i} (${frameKind(fr[i])}) at ${at}` };
    },
  ],
  [
    3,
    'swap frames',
    (r, fr) => {
      if (fr.length < 2) return undefined;
      const i = r.int(fr.length);
      const j = r.chance(0.5) ? Math.min(fr.length - 1, i + 1) : r.int(fr.length);
      const out = fr.slice();
      [out[i], out[j]] = [out[j], out[i]];
      return { frames: out, label: `swap frames ${i} and ${j}` };
    },
  ],
  [
    2,
    'move frame',
    (r, fr) => {
      if (fr.length < 2) return undefined;
      const i = r.int(fr.length);
      const out = fr.slice();
      const [f] = out.splice(i, 1);
      const at = r.int(out.length + 1);
      out.splice(at, 0, f);
      return { frames: out, label: `move frame ${i} to ${at}` };
    },
  ],
  [
    1,
    'shuffle',
    (r, fr) => {
      const out = fr.slice();
      for (let i = out.length - 1; i > 0; i--) {
        const j = r.int(i + 1);
        [out[i], out[j]] = [out[j], out[i]];
      }
      return { frames: out, label: 'shuffle every frame' };
    },
  ],
  [
    4,
    'truncate',
    (r, fr) => {
      const k = r.int(fr.length);
      return { frames: fr.slice(0, k), label: `truncate after ${k} frames` };
    },
  ],
  [
    1,
    'empty frame',
    (r, fr) => {
      const out = fr.slice();
      const at = r.int(fr.length + 1);
      out.splice(at, 0, {});
      return { frames: out, label: `empty frame at ${at}` };
    },
  ],
  [
    1,
    'two kinds in one frame',
    (r, fr) => {
      if (fr.length < 2) return undefined;
      const i = r.int(fr.length);
      const j = r.int(fr.length);
      const merged = { ...cloneValue(fr[j]), ...cloneValue(fr[i]) } as Plain;
      delete merged.kind;
      const out = fr.slice();
      out[i] = merged;
      return { frames: out, label: `frame ${i} also carries frame ${j}` };
    },
  ],
  [1, 'valid rechunk', (r, fr) => ({ frames: rechunk(fr, r.pick([333, 1000, 4096])), label: 'chunks cut smaller (valid)' })],
  [
    1,
    'foreign connection',
    (r, fr, bases) => {
      const other = r.pick(bases).frames;
      const start = indicesOf(other, 'connection');
      if (!start.length) return undefined;
      const s = r.pick(start);
      let e = s + 1;
      while (e < other.length && frameKind(other[e]) !== 'connection' && frameKind(other[e]) !== 'streamEnd') e++;
      const at = r.int(fr.length + 1);
      const out = fr.slice();
      out.splice(at, 0, ...other.slice(s, e));
      return { frames: out, label: `frames ${s}..${e} of another stream spliced in at ${at}` };
    },
  ],
];

const TOTAL_WEIGHT = MUTATIONS.reduce((a, [w]) => a + w, 0);

function pickMutation(r: Rand): Mutation {
  let x = r.int(TOTAL_WEIGHT);
  for (const [w, , fn] of MUTATIONS) {
    if (x < w) return fn;
    x -= w;
  }
  return MUTATIONS[0][2];
}

// ---- cases --------------------------------------------------------------------------------------------

interface Base {
  name: string;
  frames: FrameMsg[];
}

interface Case {
  label: string;
  options: RestoreOptions;
  /** frames after the options: through SoccrClient.restore, or raw (Buffers are sent as they are) */
  frames: Array<FrameMsg | Buffer>;
  /** raw: written through a plain gRPC call, options frame included in `frames` (or not) */
  raw?: boolean;
  /** raw: cancel the call after writing the frames instead of half-closing it */
  cancel?: boolean;
}

interface Counts {
  byCode: Map<string, number>;
  failures: Array<{ label: string; code: string; details: string }>;
  calls: number;
  lockedCalls: number;
  /** connections that went live at the receiver (go-live runs) */
  delivered: number;
}

// ---- the daemon's resources ----------------------------------------------------------------------------

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The daemon's peak resident memory so far (VmHWM), bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * How high the daemon's peak resident memory may be after each fuzz run. Hostile streams announce queues
 * of up to 256 MiB and send a few bytes of them, messages of up to 8 MiB come 16 at a time, and a valid
 * stream is at most a few hundred KiB. Measured here (2 shared cores, five runs): 89 MiB after the
 * warm-up, 200 to 300 MiB after the root run and after the run as uid 65534. The bound leaves room for the heap's
 * ups and downs under load; a daemon that filled what the streams announce (16 streams in flight, up to
 * 256 MiB each) would be far past it.
 */
const MEMORY_BOUND = 512 * MiB;

function fdList(pid: number): string {
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return `${fd}->${readlinkSync(`/proc/${pid}/fd/${fd}`)}`;
      } catch {
        return `${fd}->?`;
      }
    })
    .join(' ');
}

/** What the daemon's fds that were not there before are: for a socket, its line in `ss` wherever it lives. */
function newFds(pid: number, before: string, namespaces: string[]): string {
  const old = new Set(before.split(' '));
  return fdList(pid)
    .split(' ')
    .filter((e) => !old.has(e))
    .map((e) => {
      const ino = /socket:\[(\d+)\]/.exec(e)?.[1];
      if (!ino) return e;
      const where = [undefined, ...namespaces].flatMap((ns) => {
        try {
          const out = ns ? run('ip', ['netns', 'exec', ns, 'ss', '-aenpxtuw']) : run('ss', ['-aenpxtuw']);
          return out
            .split('\n')
            .filter((l) => new RegExp(`(ino:| )${ino}( |$)`).test(l))
            .map((l) => `${ns ?? 'root'}: ${l.replace(/\s+/g, ' ')}`);
        } catch {
          return [];
        }
      });
      return `${e} ${where.join(' | ') || '(not found by ss)'}`;
    })
    .join('\n');
}

async function settle<T>(read: () => T | Promise<T>, want: T, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (v === want || Date.now() > deadline) return v;
    await sleep(100);
  }
}

// ---- raw Restore calls -----------------------------------------------------------------------------------

type RestoreDef = protoLoader.MethodDefinition<FrameMsg, { session: SessionInfoMsg | null }>;

function restoreDefinition(): RestoreDef {
  const svc = loadPackageDefinition()[SERVICE_NAME] as protoLoader.ServiceDefinition;
  return svc.Restore as RestoreDef;
}

/** Writes `items` (frames, or bytes sent as they are) on a plain Restore call, honouring flow control. */
function rawRestore(client: grpc.Client, def: RestoreDef, items: Array<FrameMsg | Buffer>, cancel: boolean): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    let ended = false;
    const call = client.makeClientStreamRequest<FrameMsg | Buffer, { session: SessionInfoMsg | null }>(
      def.path,
      (x) => (Buffer.isBuffer(x) ? x : def.requestSerialize(x)),
      (b) => def.responseDeserialize(b),
      new grpc.Metadata(),
      {},
      (err, res) => {
        ended = true;
        if (err) resolve({ code: err.code, details: err.details });
        else resolve({ code: grpc.status.OK, details: 'OK', session: res?.session ?? undefined });
      },
    );
    call.on('error', () => undefined);
    void (async () => {
      for (const it of items) {
        if (ended) return;
        if (!call.write(it)) {
          await new Promise<void>((r) => {
            const t = setInterval(() => {
              if (ended) {
                clearInterval(t);
                r();
              }
            }, 20);
            void once(call, 'drain').then(() => {
              clearInterval(t);
              r();
            });
          });
        }
      }
      if (ended) return;
      if (cancel) {
        await sleep(20);
        call.cancel();
      } else call.end();
    })();
  });
}

// ---- the tests -------------------------------------------------------------------------------------------

describe('Restore fuzzing against a running soccrd', function () {
  this.timeout(300_000);
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const randomStreams = Number(process.env.FUZZ_STREAMS ?? 7000);
  /** random streams of the run as uid 65534 (with go-live on) */
  const nobodyStreams = Number(process.env.FUZZ_NOBODY_STREAMS ?? 2500);
  let daemon: DaemonProcess;
  let client: SoccrClient;
  let raw: grpc.Client;
  let def: RestoreDef;
  const pairs: Pair[] = [];
  let target: Topology;
  let targetNs: string;
  const bases: Base[] = [];
  let dir: string;
  let fifo: string;
  let baselineFds = 0;
  let baselineFdList = '';
  let warmPeak = 0;
  /**
   * Who calls, and how: root on the daemon's own socket (held restores), or uid 65534 through its relay,
   * going live at its receiver (`goLive`: the hand-over path) within its policy (`policy`: the daemon may
   * refuse with PERMISSION_DENIED, kind FORBIDDEN, what the policy does not allow).
   */
  interface Via {
    address: string;
    goLive?: string;
    policy: boolean;
  }
  let via: Via;
  /** uid 65534's directory: its relay's socket, its receiver's (the policy's hand-over prefix) */
  let nobodyDir: string;
  let policyFile: string;

  const targetPath = (): string => target.nsPath(targetNs);
  const connect = (): void => {
    client = new SoccrClient(via.address, { timeoutMs: 20_000 });
    raw = new grpc.Client(via.address, grpc.credentials.createInsecure());
  };
  /**
   * The daemon's open fds with no connection of ours: gRPC channels open and share connections as they
   * see fit, so the count is compared with every client of this test closed (and the daemon's end of
   * their connections closed with them).
   */
  const quietFds = async (want?: number): Promise<number> => {
    client.close();
    raw.close();
    const n = await settle(() => openFds(daemon.pid), want ?? -1, want === undefined ? 1000 : 10_000);
    connect();
    return n;
  };

  /** Restore options as most cases use them: held, never live, into the target namespace. */
  const normalOptions = (r: Rand): RestoreOptions => ({
    netns: targetPath(),
    goLive: via.goLive !== undefined,
    deliverUnixPath: via.goLive ?? '',
    leaseMs: 120_000,
    noNetworkLock: !r.chance(0.08),
  });

  async function runCase(c: Case, counts: Counts): Promise<void> {
    let out: Outcome;
    if (c.raw) out = await withTimeout(rawRestore(raw, def, c.frames, c.cancel ?? false), CALL_TIMEOUT_MS);
    else {
      out = await withTimeout(
        client.restore(c.options, c.frames as FrameMsg[]).then(
          (session): Outcome => ({ code: grpc.status.OK, details: 'OK', session }),
          (err: unknown): Outcome => (isServiceError(err) ? { code: err.code, details: err.details } : { code: LOCAL_ERROR, details: String(err) }),
        ),
        CALL_TIMEOUT_MS,
      );
    }
    counts.calls++;
    if (!c.options.noNetworkLock) counts.lockedCalls++;
    const name = codeName(out.code);
    counts.byCode.set(name, (counts.byCode.get(name) ?? 0) + 1);
    // A cancelled call ends CANCELLED, unless the daemon answered before the cancel reached it.
    const expected = c.cancel ? new Set([...ALLOWED, grpc.status.CANCELLED]) : ALLOWED;
    // A non-admin caller's policy refuses what it does not allow (a mark, forced buffer sizes): said so.
    const refusedByPolicy = via.policy && out.code === grpc.status.PERMISSION_DENIED && out.details.includes('your policy');
    if (!expected.has(out.code) && !refusedByPolicy) counts.failures.push({ label: c.label, code: name, details: out.details });
    if (out.code === grpc.status.OK && c.options.goLive) {
      // Gone live: handed over to the receiver (which resets them), nothing of it left with the daemon.
      if (!out.session) counts.failures.push({ label: c.label, code: name, details: 'OK without a session' });
      else if (out.session.state !== SessionState.RESUMED || !out.session.connections.every((x) => x.delivered))
        counts.failures.push({
          label: c.label,
          code: name,
          details: `OK with go_live but session ${out.session.sessionId} is ${sessionStateName(out.session.state)}, not RESUMED with every connection delivered`,
        });
      else counts.delivered += out.session.connections.length;
    } else if (out.code === grpc.status.OK) {
      if (!out.session) counts.failures.push({ label: c.label, code: name, details: 'OK without a session' });
      else if (out.session.state !== SessionState.HELD)
        counts.failures.push({
          label: c.label,
          code: name,
          details: `OK but session ${out.session.sessionId} is ${sessionStateName(out.session.state)}, not HELD`,
        });
      else {
        try {
          const a = await client.abort(out.session.sessionId);
          if (a.state !== SessionState.ABORTED)
            counts.failures.push({ label: c.label, code: 'ABORT', details: `abort left session ${a.sessionId} ${sessionStateName(a.state)}` });
        } catch (err) {
          counts.failures.push({ label: c.label, code: 'ABORT', details: `abort of ${out.session.sessionId} failed: ${String(err)}` });
        }
      }
    }
  }

  async function runAll(cases: Iterable<Case>, counts: Counts, batch: number): Promise<void> {
    let pending: Case[] = [];
    const flush = async (): Promise<void> => {
      await Promise.all(pending.map((c) => runCase(c, counts)));
      pending = [];
    };
    for (const c of cases) {
      pending.push(c);
      if (pending.length >= batch) await flush();
      if (daemon.proc.exitCode !== null || daemon.proc.signalCode !== null) throw new Error(`soccrd died during the fuzz: ${daemonLogs(80)}`);
    }
    await flush();
  }

  before(async function () {
    this.timeout(120_000);
    dir = mkdtempSync(join(tmpdir(), 'soccrt-fuzz'));
    fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    writeFileSync(join(dir, 'plain-file'), 'not a namespace\n');
    // The restore target: a namespace with the service addresses and routes to a peer namespace.
    target = Topology.create(1);
    targetNs = target.hosts[0];
    // uid 65534 may call (--allow-uid; the socket's group is its group), restore into the target, hand
    // over under its own directory and restore the mark the real connections carry (its policy);
    // everything else of a non-admin's defaults stays (no other mark, no transparent, unprivileged buffers).
    nobodyDir = mkdtempSync(join(tmpdir(), 'soccrt-fuzz-nobody'));
    chownSync(nobodyDir, NOBODY, NOBODY);
    policyFile = join(dir, 'policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify({ callers: { [`uid:${NOBODY}`]: { restoreNetns: [targetPath()], handoverPrefixes: [nobodyDir], marks: [USER_OPTIONS.mark] } } }),
    );
    daemon = await DaemonProcess.start([
      '--lease-ms',
      '60000',
      '--log-level',
      'warn',
      '--allow-uid',
      String(NOBODY),
      '--socket-group',
      String(NOBODY),
      '--policy',
      policyFile,
    ]);
    chmodSync(daemon.dir, 0o711); // uid 65534 reaches the socket in it
    via = { address: daemon.address, policy: false };
    connect();
    def = restoreDefinition();
    await client.getVersion();

    const r = new Rand(seed ^ 0x5eed);
    // Warm-up: a valid restore (without the lock) makes the daemon open what it keeps for good (its home
    // namespace, for coming back from setns); then the baseline of open fds.
    const warm = [{ id: 'warm', fd: 3, state: synthConn(r, 'ipv4', TcpState.ESTABLISHED, 100, 100, 0) }];
    const s = await client.restore({ netns: targetPath(), noNetworkLock: true }, buildFrames(synthHeader(r, warm, true), warm, 4096));
    await client.abort(s.sessionId);
    baselineFds = await quietFds();
    baselineFdList = fdList(daemon.pid);

    // Real checkpoints of live connections with bytes in both queues: unread bytes from the peer, and
    // bytes written into a link that went dead (unacknowledged, part of them never sent).
    for (const flavor of ['ipv4', 'ipv6', 'mapped'] as const) {
      const p = await connectPair(flavor, 1);
      pairs.push(p);
      await p.peer.command('write', { bytes: 20 * KiB });
      await sleep(100);
      p.topo.blackhole(0);
      await p.owner.command('write', { bytes: 40 * KiB });
      await sleep(100);
      await p.owner.command('quiesce');
      const frames: FrameMsg[] = [];
      for await (const f of client.checkpoint(p.owner.pid, { fds: [p.owner.connectedFd], leaseMs: 120_000 }) as AsyncIterable<FrameMsg>)
        frames.push(...unpackFrames(f));
      const header = frames[0].session as SessionHeaderMsg;
      assert.equal(frameKind(frames[frames.length - 1]), 'streamEnd', 'a complete checkpoint');
      assert.ok(
        frames.some((f) => (f.chunk?.data.length ?? 0) > 0),
        'the checkpoint carries queue bytes',
      );
      // The connection goes on at its source; its frames are ours to mutate.
      await client.abort(header.sessionId);
      bases.push({ name: `real ${flavor}`, frames });
      bases.push({ name: `real ${flavor}, 4 KiB chunks`, frames: rechunk(frames, 4096) });
    }
    // Synthetic streams: several connections, small chunks, every family, with and without tuples.
    const synth = (name: string, conns: Conn[], tuples: boolean, chunk: number): void => {
      bases.push({ name, frames: buildFrames(synthHeader(r, conns, tuples), conns, chunk) });
    };
    const mk = (flavor: Flavor, k: number, recv: number, send: number, unsent: number): Conn => ({
      id: `s:${k}`,
      fd: 10 + k,
      state: synthConn(r, flavor, TcpState.ESTABLISHED, recv, send, unsent),
    });
    synth('synthetic 3 x ipv4', [mk('ipv4', 0, 5000, 3000, 1000), mk('ipv4', 1, 0, 0, 0), mk('ipv4', 2, 9000, 0, 0)], true, 2048);
    synth('synthetic 2 x ipv6 without tuples', [mk('ipv6', 0, 3000, 6000, 6000), mk('ipv6', 1, 100, 100, 0)], false, 1024);
    synth('synthetic mapped', [mk('mapped', 0, 2000, 2000, 500)], true, 700);
    synth('synthetic mixed', [mk('ipv4', 0, 10, 10, 0), mk('ipv6', 1, 10, 10, 0), mk('mapped', 2, 10, 10, 0), mk('ipv4', 3, 0, 64, 64)], true, 4096);
    synth('synthetic empty session', [], true, 4096);
    warmPeak = peakRss(daemon.pid);
  });

  after(async () => {
    client?.close();
    raw?.close();
    await killAllEndpoints();
    await cleanupDaemons();
    destroyTopologies();
    target?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (nobodyDir) rmSync(nobodyDir, { recursive: true, force: true });
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs(60)}\n`);
  });

  /** One fuzz run: who calls (via), which phases, how many random streams, what it must at least see. */
  interface RunSpec {
    who: string;
    seed: number;
    phases: ReadonlyArray<'truncations' | 'byteCuts' | 'special' | 'random'>;
    randomStreams: number;
    /** the outcomes every run of this kind must see at least once */
    codes: string[];
    /** called before the daemon's fds are compared with the baseline: lets go of this run's own connections */
    letGo?: () => Promise<void>;
  }

  /** Streams of the run so far, both runs together; whether the root run ran. */
  let totalCalls = 0;
  let rootRan = false;

  async function fuzzRun(spec: RunSpec): Promise<void> {
    const r = new Rand(spec.seed);
    const counts: Counts = { byCode: new Map(), failures: [], calls: 0, lockedCalls: 0, delivered: 0 };
    const started = Date.now();
    const ns = targetPath();

    // 1. Every base stream whole (valid: held, then aborted) and truncated after every frame.
    const truncations = function* (): Generator<Case> {
      for (const b of bases) {
        for (let k = 0; k <= b.frames.length; k++) {
          yield { label: `${b.name}: first ${k} of ${b.frames.length} frames`, options: normalOptions(r), frames: b.frames.slice(0, k) };
        }
      }
    };
    // 2. Truncation inside a frame, at every byte of its encoding (sent raw), for each kind of frame.
    const byteCuts = function* (): Generator<Case> {
      const b = bases[0].frames;
      const options: FrameMsg = {
        restoreOptions: { netns: ns, deliverUnixPath: '', goLive: false, transparent: false, leaseMs: 0, noNetworkLock: true, dataTransfer: null },
      };
      for (const kind of ['session', 'connection', 'chunk', 'end', 'streamEnd']) {
        const i = indicesOf(b, kind)[0];
        const bytes = def.requestSerialize(b[i]);
        const step = bytes.length > 400 ? Math.ceil(bytes.length / 400) : 1;
        for (let n = 0; n < bytes.length; n += step) {
          yield {
            label: `${kind} frame cut to ${n} of ${bytes.length} bytes`,
            options: { noNetworkLock: true },
            raw: true,
            frames: [options, ...b.slice(0, i), bytes.subarray(0, n), ...b.slice(i + 1)],
          };
        }
      }
    };
    // 3. Restore options and framing that are wrong before any connection.
    const special = function* (): Generator<Case> {
      const b = bases[0].frames;
      const good = (noNetworkLock: boolean): FrameMsg => ({
        restoreOptions: { netns: ns, deliverUnixPath: '', goLive: false, transparent: false, leaseMs: 0, noNetworkLock, dataTransfer: null },
      });
      const badOptions: Array<[string, RestoreOptions]> = [
        ['no such namespace', { netns: '/run/netns/soccrt-no-such-namespace' }],
        ['a relative namespace path', { netns: 'no/such/netns' }],
        ['a regular file as namespace', { netns: join(dir, 'plain-file') }],
        ['a directory as namespace', { netns: dir }],
        ['a FIFO as namespace', { netns: fifo }],
        ['a UTS namespace as network namespace', { netns: '/proc/self/ns/uts' }],
        ['a mount namespace as network namespace', { netns: '/proc/self/ns/mnt' }],
        ['a lease of 1 ms', { netns: ns, leaseMs: 1 }],
        ['a lease of 2^32-1 ms', { netns: ns, leaseMs: 0xffffffff }],
        ['go live without a delivery path', { netns: ns, goLive: true }],
        ['a delivery path longer than a Unix socket path', { netns: ns, deliverUnixPath: `/tmp/${'x'.repeat(200)}` }],
      ];
      for (const [what, o] of badOptions) {
        for (const noNetworkLock of [true, false]) {
          for (const b2 of [bases[0], bases[6]])
            yield { label: `${what} (${b2.name}, lock ${String(!noNetworkLock)})`, options: { ...o, noNetworkLock }, frames: b2.frames };
        }
      }
      yield { label: 'no frame at all', options: {}, raw: true, frames: [] };
      yield { label: 'no options frame', options: {}, raw: true, frames: b };
      yield { label: 'only the options', options: {}, raw: true, frames: [good(true)] };
      yield { label: 'options twice', options: {}, raw: true, frames: [good(true), good(true), ...b] };
      yield { label: 'options in the middle', options: {}, raw: true, frames: [good(true), b[0], good(false), ...b.slice(1)] };
      yield { label: 'options last', options: {}, raw: true, frames: [good(true), ...b, good(true)] };
      yield { label: 'an empty frame first', options: {}, raw: true, frames: [{}, ...b] };
      yield { label: 'an empty options frame', options: {}, raw: true, frames: [{ restoreOptions: {} as never }, ...b] };
      const packed = [...batchFrames(b)];
      yield { label: 'a batch as the first frame', options: {}, raw: true, frames: packed };
      yield { label: 'options inside a batch', options: {}, raw: true, frames: [good(true), { batch: { frames: [good(true), b[0]] } }, ...b.slice(1)] };
      yield {
        label: 'a batch inside a batch',
        options: {},
        raw: true,
        frames: [good(true), { batch: { frames: [{ batch: { frames: b.slice(0, 2) } }] } }, ...b.slice(2)],
      };
      yield { label: 'an empty batch', options: {}, raw: true, frames: [good(true), b[0], { batch: { frames: [] } }, ...b.slice(1)] };
      yield { label: 'the whole stream in one batch', options: {}, raw: true, frames: [good(true), { batch: { frames: b } }] };
      yield { label: 'a stream packed in batches', options: {}, raw: true, frames: [good(true), ...packed] };
      for (let k = 0; k < 3; k++) {
        yield {
          label: `a frame of ${MAX_CHUNK + 1} queue bytes (lock ${String(k > 0)})`,
          options: { netns: ns, noNetworkLock: k === 0 },
          frames: edit(b, indicesOf(b, 'chunk')[0], (f) => ((f.chunk as Plain).data = randomBytes(MAX_CHUNK + 1))),
        };
        yield {
          label: `a gRPC message of 9 MiB (lock ${String(k > 0)})`,
          options: { netns: ns, noNetworkLock: k === 0 },
          frames: edit(b, indicesOf(b, 'chunk')[0], (f) => ((f.chunk as Plain).data = randomBytes(9 * MiB))),
        };
      }
      for (const base of bases) {
        for (let k = 1; k < base.frames.length; k += 2) {
          yield {
            label: `${base.name}: cancelled after ${k} frames`,
            options: {},
            raw: true,
            cancel: true,
            frames: [good(r.chance(0.5)), ...base.frames.slice(0, k)],
          };
        }
      }
    };
    // 4. Random mutations of random bases: one to three each; some sent with undecodable bytes.
    const random = function* (): Generator<Case> {
      for (let n = 0; n < spec.randomStreams; n++) {
        const base = r.pick(bases);
        let frames = base.frames;
        const labels: string[] = [];
        const k = r.pick([1, 1, 1, 2, 2, 3]);
        for (let m = 0; m < k; m++) {
          const res = pickMutation(r)(r, frames, bases);
          if (res) {
            frames = res.frames;
            labels.push(res.label);
          }
        }
        const options = normalOptions(r);
        if (r.chance(0.04) && frames.length) {
          // Bytes the daemon cannot even decode: flipped, cut or random, in place of one frame.
          const i = r.int(frames.length);
          const bytes = Buffer.from(def.requestSerialize(frames[i]));
          const how = r.pick(['flip', 'cut', 'random', 'varint']);
          if (how === 'flip') for (let f = 0; f < r.range(1, 4); f++) bytes[r.int(bytes.length)] = r.int(256);
          const item =
            how === 'cut'
              ? bytes.subarray(0, r.int(bytes.length))
              : how === 'random'
                ? r.bytes(r.range(1, 200))
                : how === 'varint'
                  ? Buffer.from([0x22, 0xff, 0xff, 0xff, 0xff, 0x0f])
                  : bytes;
          const opt: FrameMsg = {
            restoreOptions: {
              netns: ns,
              deliverUnixPath: options.deliverUnixPath ?? '',
              goLive: options.goLive ?? false,
              transparent: false,
              leaseMs: 0,
              noNetworkLock: options.noNetworkLock ?? false,
              dataTransfer: null,
            },
          };
          const items: Array<FrameMsg | Buffer> = [opt, ...frames];
          items[i + 1] = item;
          labels.push(`frame ${i} sent as ${how} bytes`);
          yield { label: `#${n} ${base.name}: ${labels.join('; ')}`, options, raw: true, frames: items };
        } else if (r.chance(0.2)) {
          // As a daemon sends them: small frames packed into batches, mutated frames inside.
          yield { label: `#${n} ${base.name}: ${labels.join('; ') || 'unchanged'}; packed in batches`, options, frames: [...batchFrames(frames)] };
        } else yield { label: `#${n} ${base.name}: ${labels.join('; ') || 'unchanged'}`, options, frames };
      }
    };

    const phases: string[] = [];
    const phase = async (name: string, cases: Iterable<Case>, batch: number): Promise<void> => {
      const t0 = Date.now();
      const n0 = counts.calls;
      await runAll(cases, counts, batch);
      phases.push(`${name} ${counts.calls - n0} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    };
    if (spec.phases.includes('truncations')) await phase('truncated after every frame', truncations(), 12);
    if (spec.phases.includes('byteCuts')) await phase('cut inside a frame', byteCuts(), 16);
    if (spec.phases.includes('special')) await phase('bad options and framing', special(), 4);
    if (spec.phases.includes('random')) await phase('random mutations', random(), 16);
    const seconds = (Date.now() - started) / 1000;
    const summary = [...counts.byCode]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    process.stdout.write(
      `      ${spec.who}, seed ${spec.seed}: ${counts.calls} Restore streams in ${seconds.toFixed(1)} s (${counts.lockedCalls} with the network lock${via.goLive ? `, ${counts.delivered} connections live at the receiver` : ''}): ${summary}\n      ${phases.join('; ')}\n`,
    );

    if (counts.failures.length) {
      // One line per kind of failure (numbers blanked out), with how often and a first example.
      const groups = new Map<string, { n: number; example: string }>();
      for (const f of counts.failures) {
        const key = `${f.code}: ${f.details
          .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, 'ID')
          .replace(/\d+/g, 'N')
          .slice(0, 160)}`;
        const g = groups.get(key) ?? { n: 0, example: f.label.slice(0, 300) };
        g.n++;
        groups.set(key, g);
      }
      process.stdout.write(`      failures by kind:\n${[...groups].map(([k, g]) => `        ${g.n} x ${k}\n          e.g. ${g.example}`).join('\n')}\n`);
    }
    assert.deepEqual(
      counts.failures.slice(0, 10).map((f) => `${f.label}: ${f.code}: ${f.details}`),
      [],
      `${counts.failures.length} calls ended wrongly (${spec.who}, seed ${spec.seed})`,
    );

    // The daemon is as it was: serving, no session frozen or held, no lock entry, no socket, same fds.
    assert.ok((await client.getVersion()).version, 'GetVersion answers');
    assert.equal(daemon.proc.exitCode, null, 'soccrd still runs');
    const active = (await client.listSessions()).filter((s) => s.state === SessionState.FROZEN || s.state === SessionState.HELD);
    assert.deepEqual(
      active.map((s) => `${s.sessionId} ${sessionStateName(s.state)}`),
      [],
      'no session left frozen or held',
    );
    for (const [name, n] of [[targetNs, targetNs], ...pairs.map((p) => [p.topo.hosts[0], p.topo.hosts[0]]), ['root namespace', undefined]] as Array<
      [string, string | undefined]
    >) {
      assert.equal(lockEntries(n, daemon.lockTable), 0, `lock entries left in ${name}`);
    }
    // Sockets gone live are reset by their receiver: gone at once, or as soon as the receiver got to them.
    await settle(() => tcpSockets(targetNs).length, 0, 10_000);
    assert.deepEqual(tcpSockets(targetNs), [], 'no socket left in the target namespace');
    await spec.letGo?.();
    const fds = await quietFds(baselineFds);
    if (fds !== baselineFds)
      assert.fail(
        `open fds of soccrd: ${baselineFds} before, ${fds} after; new:\n${newFds(daemon.pid, baselineFdList, [targetNs, ...pairs.flatMap((p) => [p.topo.hosts[0], p.topo.peer])])}`,
      );
    totalCalls += counts.calls;
    for (const code of spec.codes) assert.ok((counts.byCode.get(code) ?? 0) > 0, `no call ended ${code}: the fuzz misses a whole class`);
    if (via.goLive) assert.ok(counts.delivered > 0, 'no connection went live: go-live was not exercised');
    // The daemon's memory: what it reached at its peak, against the bound.
    const peak = peakRss(daemon.pid);
    process.stdout.write(
      `      soccrd peak RSS (VmHWM): ${(warmPeak / MiB).toFixed(0)} MiB after the warm-up, ${(peak / MiB).toFixed(0)} MiB after this run\n`,
    );
    assert.ok(peak < MEMORY_BOUND, `soccrd's peak RSS ${(peak / MiB).toFixed(0)} MiB is over ${MEMORY_BOUND / MiB} MiB`);
  }

  const ROOT_CODES = ['OK', 'INVALID_ARGUMENT', 'DATA_LOSS', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION'];

  it(`mutated, truncated and reordered streams end in INVALID_ARGUMENT, DATA_LOSS, RESOURCE_EXHAUSTED, FAILED_PRECONDITION or OK; nothing is left behind`, async () => {
    await fuzzRun({ who: 'root', seed, phases: ['truncations', 'byteCuts', 'special', 'random'], randomStreams, codes: ROOT_CODES });
    rootRan = true;
  });

  it('as a non-root allowed caller (uid 65534: --allow-uid, its policy) with go-live on: the same, or PERMISSION_DENIED where its policy refuses; valid streams go live at its receiver; nothing is left behind; 10,000+ streams in both runs', async function () {
    const program = OtherUserCopy.of(NOBODY, NOBODY).program(this, 'test/fixtures/nobody-relay.js');
    if (spawnSync('setpriv', ['--version']).status !== 0) {
      if (this.test) this.test.title += ' (skipped: no setpriv)';
      this.skip();
    }
    const relayPath = join(nobodyDir, 'relay.sock');
    const receiverPath = join(nobodyDir, 'receiver.sock');
    // The relay and the receiver run as uid 65534 with no other group: every call the daemon gets comes from it.
    const relay: ChildProcess = spawn(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, program, relayPath, daemon.socketPath, receiverPath],
      { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    relay.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    relay.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const stopRelay = async (): Promise<void> => {
      if (relay.exitCode !== null || relay.signalCode !== null) return;
      const exited = once(relay, 'exit');
      if (relay.pid) process.kill(relay.pid, 'SIGTERM');
      const t = setTimeout(() => relay.pid && relay.exitCode === null && process.kill(relay.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    };
    try {
      const deadline = Date.now() + 15_000;
      while (!output.includes('ready\n')) {
        if (relay.exitCode !== null || Date.now() > deadline) assert.fail(`the relay as uid ${NOBODY} did not start: ${output}`);
        await sleep(50);
      }
      client.close();
      raw.close();
      via = { address: `unix://${relayPath}`, goLive: receiverPath, policy: true };
      connect();
      await fuzzRun({
        who: `uid ${NOBODY}, go-live on`,
        seed: seed ^ 0x0b0d,
        phases: ['truncations', 'random'],
        randomStreams: nobodyStreams,
        codes: [...ROOT_CODES, 'PERMISSION_DENIED'],
        letGo: async () => {
          // Its connections end with it; the rest of the checks go to the daemon's own socket again.
          await stopRelay();
          via = { address: daemon.address, policy: false };
        },
      });
      assert.equal((/"failed"/.exec(output) ?? [])[0], undefined, `a hand-over failed at the receiver: ${output}`);
      // The daemon took these calls from uid 65534 (its log names the caller of each failed one).
      assert.match(daemon.output, new RegExp(`"caller":"uid=${NOBODY} gid=${NOBODY} pid=${String(relay.pid)}"`));
      // Both runs together (where this one ran after the root run, as in the whole file).
      if (rootRan) assert.ok(totalCalls >= 10_000 || randomStreams + nobodyStreams < 9500, `only ${totalCalls} streams in both runs`);
    } finally {
      await stopRelay();
      if (via.address !== daemon.address) {
        client.close();
        raw.close();
        via = { address: daemon.address, policy: false };
        connect();
      }
    }
  });

  describe('limits of the restore input: RESOURCE_EXHAUSTED', () => {
    const expectStatus = async (p: Promise<unknown>, code: grpc.status, what: string): Promise<string> => {
      try {
        await p;
      } catch (err) {
        assert.ok(isServiceError(err), `${what}: not a gRPC error: ${String(err)}`);
        assert.equal(grpc.status[err.code], grpc.status[code], `${what}: ${err.details}`);
        return err.details;
      }
      throw new assert.AssertionError({ message: `${what}: succeeded, expected ${grpc.status[code]}` });
    };
    const header = (count: number, tuples?: SessionHeaderMsg['tuples']): FrameMsg => ({
      session: {
        sessionId: 'limits',
        leaseExpiresUnixMs: 0,
        connectionCount: count,
        pid: 1,
        hostname: 'fuzz',
        createdUnixMs: 0,
        tuples: tuples ?? [],
        skipped: [],
      },
    });
    const conn = (r: Rand, inqLen: number, outqLen: number): FrameMsg => {
      const st = synthConn(r, 'ipv4', TcpState.ESTABLISHED, 0, 0, 0);
      return { connection: { index: 0, id: 'c0', fd: 3, state: stateToObject({ ...st, inqLen, outqLen }) } };
    };
    const opts = (): RestoreOptions => ({ netns: targetPath(), noNetworkLock: true });

    afterEach(async () => {
      const active = (await client.listSessions()).filter((s) => s.state === SessionState.FROZEN || s.state === SessionState.HELD);
      assert.deepEqual(active, [], 'no session left frozen or held');
      assert.ok((await client.getVersion()).version);
    });

    it(`connections per stream: more than ${DEFAULT_LIMITS.maxConnections}`, async () => {
      const details = await expectStatus(
        client.restore(opts(), [header(DEFAULT_LIMITS.maxConnections + 1)]),
        grpc.status.RESOURCE_EXHAUSTED,
        'connection_count above the limit',
      );
      assert.match(details, /limit/);
      // At the limit the header is taken; the stream then ends early, which is malformed, not a limit.
      await expectStatus(client.restore(opts(), [header(DEFAULT_LIMITS.maxConnections)]), grpc.status.INVALID_ARGUMENT, 'connection_count at the limit');
      // The lock tuples count as connections too: more tuples than connections is malformed.
      const t = {
        local: { family: AddressFamily.IPV4, ip: '10.77.0.1', port: 1, scopeInterface: '' },
        remote: { family: AddressFamily.IPV4, ip: '10.77.0.2', port: 2, scopeInterface: '' },
      };
      await expectStatus(client.restore(opts(), [header(1, [t, t])]), grpc.status.INVALID_ARGUMENT, 'more tuples than connections');
    });

    it(`bytes per queue: more than ${DEFAULT_LIMITS.maxQueueBytes / MiB} MiB`, async () => {
      const r = new Rand(1);
      const max = DEFAULT_LIMITS.maxQueueBytes;
      for (const [inq, outq] of [
        [max + 1, 0],
        [0, max + 1],
        [0xffffffff, 0xffffffff],
      ]) {
        const details = await expectStatus(
          client.restore(opts(), [header(1), conn(r, inq, outq)]),
          grpc.status.RESOURCE_EXHAUSTED,
          `queues of ${inq} and ${outq} bytes`,
        );
        assert.match(details, /limit/);
      }
      // Exactly at the limit the connection header is taken (the bytes then never come: malformed).
      await expectStatus(client.restore(opts(), [header(1), conn(r, max, max)]), grpc.status.INVALID_ARGUMENT, 'queues at the limit');
    });

    it(`bytes per frame: a chunk of more than ${MAX_CHUNK / MiB} MiB, a gRPC message of more than 8 MiB`, async () => {
      const r = new Rand(2);
      const b = bases[0].frames;
      const at = indicesOf(b, 'chunk')[0];
      const details = await expectStatus(
        client.restore(
          opts(),
          edit(b, at, (f) => ((f.chunk as Plain).data = r.bytes(MAX_CHUNK + 1))),
        ),
        grpc.status.RESOURCE_EXHAUSTED,
        'a chunk of 1 MiB + 1',
      );
      assert.match(details, /limit|more than/);
      // A chunk of exactly 1 MiB is taken (here its queue is shorter: malformed).
      await expectStatus(
        client.restore(
          opts(),
          edit(b, at, (f) => ((f.chunk as Plain).data = r.bytes(MAX_CHUNK))),
        ),
        grpc.status.INVALID_ARGUMENT,
        'a chunk of 1 MiB',
      );
      // grpc-js refuses a message above grpc.max_receive_message_length (daemon/main.ts) itself.
      await expectStatus(
        client.restore(
          opts(),
          edit(b, at, (f) => ((f.chunk as Plain).data = r.bytes(8 * MiB + 1))),
        ),
        grpc.status.RESOURCE_EXHAUSTED,
        'a message of 8 MiB + 1',
      );
    });

    it('bytes per session: queue bytes beyond the per-session limit (a service with small limits)', async () => {
      // The daemon's own limit is 4 GiB of queue bytes per stream, which a test cannot send: the same
      // service, in this process, with the limits scaled down. The first connection is rebuilt, the
      // second one's header would pass the session's total: RESOURCE_EXHAUSTED, and the first goes too.
      const limits = { maxQueueBytes: 64 * KiB, maxConnections: 16, maxTotalBytes: 100 * KiB };
      const log = silentLogger();
      const sessions = new SessionManager({ defaultLeaseMs: 30_000, maxLeaseMs: 600_000, retainEndedMs: 60_000, lockGraceMs: 0, netlock: undefined, log });
      const features = {
        tcpRepair: true,
        repairWindow: true,
        pidfdGetfd: true,
        bufLock: true,
        rawSocket: true,
        networkLock: false,
        nativeBatch: false,
        handoff: true,
      };
      const service = new SocketRepairService({
        version: '0.0.0',
        features,
        sessions,
        log,
        limits,
        eagerQueueBytes: 0,
        eagerSessionBytes: 0,
        netlock: undefined,
      });
      const pkg = loadPackageDefinition();
      const server = new grpc.Server({ 'grpc.max_receive_message_length': 8 * MiB });
      server.addService(
        (grpc.loadPackageDefinition(pkg) as unknown as { soccr: { v1: { SocketRepairService: grpc.ServiceClientConstructor } } }).soccr.v1.SocketRepairService
          .service,
        service.handlers(),
      );
      const sock = join(dir, 'limited.sock');
      await new Promise<void>((resolve, reject) =>
        server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
      );
      const limited = new SoccrClient(`unix://${sock}`);
      try {
        const r = new Rand(3);
        const c0 = { id: 'c0', fd: 3, state: synthConn(r, 'ipv4', TcpState.ESTABLISHED, 60 * KiB, 0, 0) };
        const c1 = { id: 'c1', fd: 4, state: synthConn(r, 'ipv4', TcpState.ESTABLISHED, 30 * KiB, 20 * KiB, 0) };
        const frames = buildFrames(synthHeader(r, [c0, c1], true), [c0, c1], 16 * KiB);
        const details = await expectStatus(
          limited.restore({ netns: targetPath(), noNetworkLock: true }, frames),
          grpc.status.RESOURCE_EXHAUSTED,
          'a session of 110 KiB against 100 KiB',
        );
        assert.match(details, /limit/);
        const ended = await limited.listSessions();
        assert.equal(ended.length, 1);
        assert.equal(ended[0].state, SessionState.ABORTED, 'the restore ended without going live');
        assert.deepEqual(tcpSockets(targetNs), [], 'the connection rebuilt before the limit was closed');
        // Within the limit, the same service takes a stream.
        const ok = await limited.restore({ netns: targetPath(), noNetworkLock: true }, buildFrames(synthHeader(r, [c1], true), [c1], 16 * KiB));
        assert.equal(ok.state, SessionState.HELD);
        await limited.abort(ok.sessionId);
      } finally {
        limited.close();
        await sessions.shutdown();
        server.forceShutdown();
      }
    });
  });
});
