// The repair engine: freeze a TCP socket in repair mode, save everything needed to rebuild it, and
// rebuild it from that saved state in a new socket, in the order the kernel accepts.
import * as N from './native';
import { SoccrError, kernelError } from './errors';
import { NetnsHandle, inNetns } from './netns';
import type { SocketDiag } from './sockdiag';
import { TH_ACK, TH_FIN, buildSegment, wireFamily } from './packet';
import { SOCKADDR_IN6_LEN, SOCKADDR_IN_LEN, SocketAddress, decodeSockaddr, encodeSockaddr, formatAddress, isMappedIPv4, parseIPv6 } from './sockaddr';
import {
  RepairWindow,
  STATE_VERSION,
  SUPPORTED_STATES,
  SavedConnection,
  TCPI_OPT_SACK,
  TCPI_OPT_TIMESTAMPS,
  TCPI_OPT_WSCALE,
  TcpState,
  UserSocketOptions,
  stateName,
} from './state';

const REPAIR_ON = 1;
const REPAIR_OFF = 0; // sends a window probe in ESTABLISHED: the peer learns our window at once
const REPAIR_OFF_NO_PROBE = -1;
const NO_QUEUE = 0;
const RECV_QUEUE = 1;
const SEND_QUEUE = 2;

/** Mark carried by packets the engine injects, so that a network lock can let them through. */
export const SOCCR_MARK = 0x50cc;

const bit = (s: TcpState): number => 1 << s;
// States in which our FIN is already in the send queue (it counts in write_seq and SIOCOUTQ).
const SENT_FIN = bit(TcpState.FIN_WAIT1) | bit(TcpState.FIN_WAIT2) | bit(TcpState.CLOSING) | bit(TcpState.LAST_ACK) | bit(TcpState.CLOSE);
// States in which the peer's FIN was received (it counts in rcv_nxt).
const RECEIVED_FIN = bit(TcpState.CLOSE_WAIT) | bit(TcpState.LAST_ACK) | bit(TcpState.CLOSE) | bit(TcpState.CLOSING);
// Our FIN goes back before the peer's (we closed first) or after it (the peer closed first).
const OUR_FIN_FIRST = bit(TcpState.FIN_WAIT1) | bit(TcpState.FIN_WAIT2) | bit(TcpState.CLOSING);
const OUR_FIN_SECOND = bit(TcpState.LAST_ACK) | bit(TcpState.CLOSE);
// States in which the peer has acknowledged our FIN.
const OUR_FIN_ACKED = bit(TcpState.FIN_WAIT2) | bit(TcpState.CLOSE);

// Reused out-parameters (all calls are synchronous on one thread).
const info = N.pinned(8);
const windowBuf = N.pinned(20);
const addrBuf = N.pinned(N.SOCKADDR_STORAGE);
const textBuf = N.pinned(32);
const optsBuf = N.pinned(32);
const packetBuf = N.pinned(64);
const destBuf = N.pinned(N.SOCKADDR_STORAGE);
const PEEK_SCRATCH = 256 * 1024;
const peekScratch = N.pinned(PEEK_SCRATCH + 1);

/** A socket in repair mode, and what resuming it needs to put back. */
export interface FrozenSocket {
  fd: number;
  /** The user's SO_REUSEADDR, which turning repair mode off would clear. */
  reuseAddr: boolean;
}

/** First 8 bytes of struct tcp_info: state, options and window scales. */
export interface TcpInfoHead {
  state: number;
  options: number;
  sndWscale: number;
  rcvWscale: number;
}

export function readTcpInfoHead(fd: number): TcpInfoHead {
  N.getsockoptBytes(fd, N.SOL_TCP, N.TCP.INFO, info, 8);
  const b = info.buf;
  return { state: b[0], options: b[5], sndWscale: b[6] & 0x0f, rcvWscale: b[6] >> 4 };
}

/**
 * The peer's address. getpeername() refuses in CLOSE; SO_PEERNAME asks the same question without that
 * check, so a closed connection that still holds unread data can be saved too.
 */
export function peerAddress(fd: number, family: 'ipv4' | 'ipv6'): SocketAddress {
  // The kernel wants exactly the address's size here, not a sockaddr_storage.
  const len = N.getsockoptBytes(fd, N.SOL_SOCKET, N.SO.PEERNAME, addrBuf, family === 'ipv4' ? SOCKADDR_IN_LEN : SOCKADDR_IN6_LEN);
  return decodeSockaddr(addrBuf.buf, len);
}

/** The socket's own address. */
export function localAddress(fd: number): SocketAddress {
  return decodeSockaddr(addrBuf.buf, N.getsockname(fd, addrBuf));
}

/** Repair mode on: the socket stops sending and its owner's reads and writes fail. */
export function pause(fd: number, knownReuseAddr?: boolean): FrozenSocket {
  try {
    // The caller may have read SO_REUSEADDR already (the crash journal needs it): one call less in the freeze.
    const reuseAddr = knownReuseAddr ?? N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.REUSEADDR) !== 0;
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR, REPAIR_ON);
    return { fd, reuseAddr };
  } catch (err) {
    throw kernelError('pausing socket (TCP_REPAIR on)', err);
  }
}

/** Repair mode off: the connection goes on from where it is, with the user's options as they were. */
export function resume(sock: FrozenSocket): void {
  try {
    N.setsockoptInt(sock.fd, N.SOL_TCP, N.TCP.REPAIR, REPAIR_OFF);
    if (sock.reuseAddr) N.setsockoptInt(sock.fd, N.SOL_SOCKET, N.SO.REUSEADDR, 1);
  } catch (err) {
    throw kernelError('resuming socket (TCP_REPAIR off)', err);
  }
}

/**
 * Closes our descriptor of a socket in repair mode: when it is the last one, the connection vanishes
 * without FIN or RST.
 */
export function silentClose(sock: FrozenSocket): void {
  N.closeQuietly(sock.fd);
}

const EMPTY = Buffer.alloc(0);

/** Selects a repair queue and reads its sequence number (rcv_nxt or write_seq). */
function queueSeq(fd: number, queue: number): number {
  N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, queue);
  return N.getsockoptInt(fd, N.SOL_TCP, N.TCP.QUEUE_SEQ) >>> 0;
}

/** Peeks the selected repair queue, which must hold exactly `len` bytes. */
function peekSelected(fd: number, len: number, what: string): Buffer {
  if (len === 0) return EMPTY;
  // Ask for one byte more than expected: a longer queue than reported must be caught, not truncated.
  const big = len + 1 > peekScratch.buf.length;
  const target = big ? N.pinned(len + 1) : peekScratch;
  const got = N.tryRecv(fd, target, 0, len + 1, N.MSG_PEEK | N.MSG_DONTWAIT);
  if (got !== len) {
    throw new SoccrError('QUEUE_MISMATCH', `${what} queue: expected ${len} bytes, peek returned ${got < 0 ? `errno ${-got}` : got}`);
  }
  return big ? target.buf.subarray(0, len) : Buffer.from(target.buf.subarray(0, len));
}

/**
 * Reads both queues of a socket saved with its queues pending (see capture). The socket must still be
 * frozen; afterwards no queue is selected.
 */
export function readQueues(sock: FrozenSocket, inqLen: number, outqLen: number): { recvQueue: Buffer; sendQueue: Buffer } {
  const fd = sock.fd;
  try {
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, RECV_QUEUE);
    const recvQueue = peekSelected(fd, inqLen, 'receive');
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, SEND_QUEUE);
    const sendQueue = peekSelected(fd, outqLen, 'send');
    return { recvQueue, sendQueue };
  } catch (err) {
    throw kernelError('reading queues', err);
  } finally {
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
  }
}

const BUF_LOCK_BOTH = 3;

function readBufLock(fd: number): number {
  const n = N.tryGetsockoptBytes(fd, N.SOL_SOCKET, N.SO.BUF_LOCK, textBuf, 4);
  // Before Linux 5.14 the kernel cannot tell: keep the sizes as saved (locked).
  return n === 4 ? textBuf.buf.readInt32LE(0) & BUF_LOCK_BOTH : BUF_LOCK_BOTH;
}

function readCongestion(fd: number): string {
  const clen = N.getsockoptBytes(fd, N.SOL_TCP, N.TCP.CONGESTION, textBuf, 16);
  const raw = textBuf.buf.subarray(0, clen);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('latin1');
}

function readUserOptions(fd: number, socketFamily: 'ipv4' | 'ipv6', reuseAddr: boolean, diag?: SocketDiag): UserSocketOptions {
  const tcpInt = (name: number): number => N.getsockoptInt(fd, N.SOL_TCP, name);
  const sockInt = (name: number): number => N.getsockoptInt(fd, N.SOL_SOCKET, name);
  const congestion = diag?.congestion ?? readCongestion(fd);
  return {
    reuseAddr,
    noDelay: tcpInt(N.TCP.NODELAY) !== 0,
    cork: tcpInt(N.TCP.CORK) !== 0,
    keepAlive: sockInt(N.SO.KEEPALIVE) !== 0,
    keepIdle: tcpInt(N.TCP.KEEPIDLE),
    keepIntvl: tcpInt(N.TCP.KEEPINTVL),
    keepCnt: tcpInt(N.TCP.KEEPCNT),
    userTimeout: tcpInt(N.TCP.USER_TIMEOUT),
    congestion,
    sndBuf: diag?.sndBuf ?? sockInt(N.SO.SNDBUF),
    rcvBuf: diag?.rcvBuf ?? sockInt(N.SO.RCVBUF),
    tos: diag?.tos ?? (socketFamily === 'ipv4' ? N.getsockoptInt(fd, N.SOL_IP, N.IP_TOS) : N.getsockoptInt(fd, N.SOL_IPV6, N.IPV6_TCLASS)),
    mark: diag?.mark ?? sockInt(N.SO.MARK),
    bufLock: readBufLock(fd),
  };
}

/**
 * Saves a paused socket. Leaves it in repair mode with no repair queue selected, so that an owner that
 * still runs gets EINVAL from its writes instead of having them vanish into an already-saved queue.
 */
export function save(sock: FrozenSocket): SavedConnection {
  return capture(sock, Infinity).state;
}

export interface Capture {
  state: SavedConnection;
  /**
   * The queues were larger than the eager limit and are not in `state` yet (empty Buffers): read them
   * with readQueues while the socket is still frozen.
   */
  queuesPending: boolean;
}

/**
 * Saves a paused socket, taking its queue bytes only if both together fit in `eagerLimit` bytes, so that
 * a caller streaming many connections never holds every queue in memory at once.
 */
export function capture(sock: FrozenSocket, eagerLimit: number, diag?: SocketDiag): Capture {
  const fd = sock.fd;
  try {
    // What socket diagnostics reported for this (frozen) socket spares the calls that read the same.
    const head = diag ?? readTcpInfoHead(fd);
    if (!SUPPORTED_STATES.has(head.state)) {
      throw new SoccrError('UNSUPPORTED_STATE', `connection is in state ${stateName(head.state)}, which cannot be checkpointed`);
    }
    const state = head.state as TcpState;
    const m = bit(state);
    let outqLen = diag ? diag.wqueue : N.ioctlInt(fd, N.SIOCOUTQ);
    let unsentLen = diag ? diag.notsent : N.ioctlInt(fd, N.SIOCOUTQNSD);
    // SIOCINQ leaves out the peer's FIN, which the diagnostics count in.
    const inqLen = diag ? Math.max(0, diag.rqueue - (m & RECEIVED_FIN && diag.rqueue > 0 ? 1 : 0)) : N.ioctlInt(fd, N.SIOCINQ);
    if (state === TcpState.CLOSE) {
      // A closed connection keeps nothing the peer could still acknowledge.
      outqLen = 0;
      unsentLen = 0;
    } else if (m & SENT_FIN) {
      // Our FIN is counted in the send figures but carries no data.
      if (outqLen > 0) outqLen--;
      if (unsentLen > 0) unsentLen--;
    }
    const mssClamp = N.getsockoptInt(fd, N.SOL_TCP, N.TCP.MAXSEG);
    const timestamp = head.options & TCPI_OPT_TIMESTAMPS ? N.getsockoptInt(fd, N.SOL_TCP, N.TCP.TIMESTAMP) >>> 0 : 0;
    let window: RepairWindow | undefined;
    const wlen = N.tryGetsockoptBytes(fd, N.SOL_TCP, N.TCP.REPAIR_WINDOW, windowBuf, 20);
    if (wlen >= 20) {
      const w = windowBuf.buf;
      window = { sndWl1: w.readUInt32LE(0), sndWnd: w.readUInt32LE(4), maxWindow: w.readUInt32LE(8), rcvWnd: w.readUInt32LE(12), rcvWup: w.readUInt32LE(16) };
    } else if (wlen !== -92 /* ENOPROTOOPT: kernel before 4.8 */) {
      throw new N.SyscallError('getsockopt', -wlen, 'TCP_REPAIR_WINDOW');
    }
    const eager = inqLen + outqLen <= eagerLimit;
    const inqSeq = queueSeq(fd, RECV_QUEUE);
    const recvQueue = eager ? peekSelected(fd, inqLen, 'receive') : EMPTY;
    const outqSeq = queueSeq(fd, SEND_QUEUE);
    const sendQueue = eager ? peekSelected(fd, outqLen, 'send') : EMPTY;
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
    const local = diag?.local ?? localAddress(fd);
    const remote = diag?.remote ?? peerAddress(fd, local.family);
    const socketFamily = local.family;
    const saved: SavedConnection = {
      version: STATE_VERSION,
      state,
      socketFamily,
      local,
      remote,
      inqSeq,
      outqSeq,
      inqLen,
      outqLen,
      unsentLen,
      mssClamp,
      tcpOptions: head.options,
      sndWscale: head.options & TCPI_OPT_WSCALE ? head.sndWscale : 0,
      rcvWscale: head.options & TCPI_OPT_WSCALE ? head.rcvWscale : 0,
      timestamp,
      window,
      recvQueue,
      sendQueue,
      options: readUserOptions(fd, socketFamily, sock.reuseAddr, diag),
    };
    return { state: saved, queuesPending: !eager };
  } catch (err) {
    // Whatever happened, no queue stays selected on a socket its owner may still use.
    try {
      N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
    } catch {
      /* the socket may be gone */
    }
    throw kernelError('saving socket', err);
  }
}

// ---- restore -----------------------------------------------------------------------------------

export interface RestoreOptions {
  /** Network namespace to create the socket in: /proc/PID/ns/net, /run/netns/NAME. */
  netns?: string;
  /** The same namespace held open (a caller restoring many sockets into it); wins over `netns`. */
  netnsHandle?: NetnsHandle;
  /**
   * Set IP_TRANSPARENT/IPV6_TRANSPARENT (needs CAP_NET_ADMIN) so the connection can be rebuilt before its
   * local address has moved to this host.
   */
  transparent?: boolean;
}

/** Checks a saved state for internal consistency before any socket exists. */
export function validateSaved(s: SavedConnection): void {
  const bad = (msg: string): never => {
    throw new SoccrError('INVALID_STATE', `invalid saved state: ${msg}`);
  };
  if (s.version !== STATE_VERSION) bad(`version ${s.version}, expected ${STATE_VERSION}`);
  if (!SUPPORTED_STATES.has(s.state)) bad(`unsupported state ${stateName(s.state)}`);
  if (s.recvQueue.length !== s.inqLen) bad(`receive queue holds ${s.recvQueue.length} bytes, header says ${s.inqLen}`);
  if (s.sendQueue.length !== s.outqLen) bad(`send queue holds ${s.sendQueue.length} bytes, header says ${s.outqLen}`);
  if (s.unsentLen > s.outqLen) bad('unsent part longer than the send queue');
  if (s.local.family !== s.remote.family) bad('local and remote address families differ');
  if (s.socketFamily !== s.local.family) bad('socket family differs from its addresses');
  if (s.local.port < 1 || s.local.port > 65535 || s.remote.port < 1 || s.remote.port > 65535) bad('port out of range');
  if (s.mssClamp < 64 || s.mssClamp > 65535) bad(`MSS ${s.mssClamp} out of range`);
  if (s.sndWscale > 14 || s.rcvWscale > 14) bad('window scale above 14');
  for (const n of [s.inqSeq, s.outqSeq, s.timestamp]) if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) bad('sequence or timestamp not a u32');
  if (s.options.congestion.length > 15 || !/^[a-z0-9_]*$/.test(s.options.congestion)) bad('congestion control name');
  // No socket ever had these: the kernel would refuse them (EINVAL) halfway through the rebuild.
  if (isMappedIPv4(s.local) !== isMappedIPv4(s.remote)) bad('one address IPv4-mapped and the other not');
  for (const [end, a] of [
    ['local', s.local],
    ['remote', s.remote],
  ] as const) {
    const why = notUnicast(a);
    if (why) bad(`${end} address ${a.ip} is ${why}`);
  }
  const o = s.options;
  if (o.keepIdle < 1 || o.keepIdle > 32767 || o.keepIntvl < 1 || o.keepIntvl > 32767) bad('keepalive time or interval outside 1..32767 s');
  if (o.keepCnt < 1 || o.keepCnt > 127) bad('keepalive count outside 1..127');
  if (o.userTimeout < 0) bad('negative user timeout');
  if (o.tos < 0 || o.tos > 255) bad(`TOS/traffic class ${o.tos} outside 0..255`);
  if (o.bufLock < 0 || o.bufLock > 3) bad(`SO_BUF_LOCK ${o.bufLock} outside 0..3`);
  if (s.window) {
    // What TCP_REPAIR_WINDOW checks, against rcv_nxt as restore() leaves it (see there).
    const w = s.window;
    const fin = bit(s.state) & RECEIVED_FIN ? 1 : 0;
    const rcvNxt = (s.inqSeq - fin) >>> 0;
    const after = (a: number, b: number): boolean => ((b - a) | 0) < 0;
    if (w.maxWindow < w.sndWnd) bad('window: max_window below snd_wnd');
    if (after(w.sndWl1, (rcvNxt + w.rcvWnd + fin) >>> 0)) bad('window: snd_wl1 beyond the receive window');
    if (after((w.rcvWup - fin) >>> 0, rcvNxt)) bad('window: rcv_wup beyond rcv_nxt');
  }
}

/** Why an address cannot be one end of a connection (unspecified, multicast, broadcast), or undefined. */
function notUnicast(a: SocketAddress): string | undefined {
  let v4: number[] | undefined;
  if (a.family === 'ipv4') v4 = a.ip.split('.').map(Number);
  else {
    const b = parseIPv6(a.ip);
    if (isMappedIPv4(a)) v4 = [...b.subarray(12)];
    else if (b.every((x) => x === 0)) return 'unspecified';
    else if (b[0] === 0xff) return 'multicast';
  }
  if (v4) {
    if (v4.every((x) => x === 0)) return 'unspecified';
    if (v4[0] >= 224 && v4[0] <= 239) return 'multicast';
    if (v4.every((x) => x === 255)) return 'broadcast';
  }
  return undefined;
}

/**
 * A bind, connect or option the target namespace refused because of what it is (its addresses, routes,
 * modules), not because of a fault: the connection cannot be rebuilt there as saved.
 */
const TARGET_ERRNOS = new Set(['EADDRINUSE', 'EADDRNOTAVAIL', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EAFNOSUPPORT', 'EINVAL']);

function targetError(what: string, err: unknown): SoccrError {
  if (err instanceof N.SyscallError && TARGET_ERRNOS.has(err.code)) {
    return new SoccrError('TARGET_STATE', `restoring socket: ${what}: ${err.message} (the target namespace cannot take this connection)`, err);
  }
  return kernelError(`restoring socket: ${what}`, err);
}

/** A rebuilt socket, still in repair mode until `resumeRestored`. */
export interface RestoredSocket extends FrozenSocket {
  state: TcpState;
}

function writeQueue(fd: number, bytes: Buffer, what: string): void {
  if (bytes.length === 0) return;
  // Small queues go through the long-lived scratch buffer: a fresh one costs an FFI call for its address.
  const src = bytes.length <= PEEK_SCRATCH ? peekScratch : N.pinned(bytes.length);
  bytes.copy(src.buf);
  let off = 0;
  let chunk = bytes.length;
  // The kernel may take less than asked, or refuse a chunk it cannot allocate at once: halve and retry.
  for (let attempts = 0; off < bytes.length; attempts++) {
    if (attempts > 1_000_000) throw new SoccrError('KERNEL', `${what} queue: no progress writing ${bytes.length} bytes`);
    const n = N.trySend(fd, src, off, Math.min(chunk, bytes.length - off), N.MSG_DONTWAIT);
    if (n > 0) {
      off += n;
      continue;
    }
    if (chunk > 1024) {
      chunk = Math.floor(chunk / 2);
      continue;
    }
    throw new N.SyscallError('send', n < 0 ? -n : 0, `${what} queue at byte ${off} of ${bytes.length}`);
  }
}

/**
 * What a fresh socket in a namespace reports for the options that follow the namespace's sysctls
 * (keepalive timing, congestion control). An option whose saved value equals it needs no call.
 */
interface NetnsDefaults {
  keepIdle: number;
  keepIntvl: number;
  keepCnt: number;
  congestion: string;
  readAt: number;
}
// Sysctls rarely change; a short lifetime bounds how long a change can go unnoticed.
const DEFAULTS_TTL_MS = 2000;
const netnsDefaults = new Map<string, NetnsDefaults>();

function defaultsFor(fd: number, netns: string | undefined): NetnsDefaults {
  const key = netns ?? '';
  const now = Date.now();
  let d = netnsDefaults.get(key);
  if (!d || now - d.readAt > DEFAULTS_TTL_MS) {
    // Read from the new socket itself before any option is set on it.
    const clen = N.getsockoptBytes(fd, N.SOL_TCP, N.TCP.CONGESTION, textBuf, 16);
    const raw = textBuf.buf.subarray(0, clen);
    const nul = raw.indexOf(0);
    d = {
      keepIdle: N.getsockoptInt(fd, N.SOL_TCP, N.TCP.KEEPIDLE),
      keepIntvl: N.getsockoptInt(fd, N.SOL_TCP, N.TCP.KEEPINTVL),
      keepCnt: N.getsockoptInt(fd, N.SOL_TCP, N.TCP.KEEPCNT),
      congestion: raw.subarray(0, nul < 0 ? raw.length : nul).toString('latin1'),
      readAt: now,
    };
    netnsDefaults.set(key, d);
  }
  return d;
}

/** Sets the user's options, skipping every one a fresh socket already has (each call costs microseconds). */
function applyUserOptions(fd: number, s: SavedConnection, d: NetnsDefaults): void {
  const o = s.options;
  const set = (level: number, name: number, value: number, dflt: number): void => {
    if (value !== dflt) N.setsockoptInt(fd, level, name, value);
  };
  // Kernel constants for a new socket: all off, no timeout, no TOS, no mark.
  set(N.SOL_TCP, N.TCP.NODELAY, o.noDelay ? 1 : 0, 0);
  set(N.SOL_TCP, N.TCP.CORK, o.cork ? 1 : 0, 0);
  set(N.SOL_SOCKET, N.SO.KEEPALIVE, o.keepAlive ? 1 : 0, 0);
  set(N.SOL_TCP, N.TCP.USER_TIMEOUT, o.userTimeout, 0);
  set(N.SOL_SOCKET, N.SO.MARK, o.mark, 0);
  if (s.socketFamily === 'ipv4') set(N.SOL_IP, N.IP_TOS, o.tos, 0);
  else set(N.SOL_IPV6, N.IPV6_TCLASS, o.tos, 0);
  // The namespace's sysctl defaults.
  set(N.SOL_TCP, N.TCP.KEEPIDLE, o.keepIdle, d.keepIdle);
  set(N.SOL_TCP, N.TCP.KEEPINTVL, o.keepIntvl, d.keepIntvl);
  set(N.SOL_TCP, N.TCP.KEEPCNT, o.keepCnt, d.keepCnt);
  if (o.congestion && o.congestion !== d.congestion) {
    textBuf.buf.fill(0, 0, 16);
    textBuf.buf.write(o.congestion, 'latin1');
    try {
      N.setsockoptBytes(fd, N.SOL_TCP, N.TCP.CONGESTION, textBuf, o.congestion.length);
    } catch (err) {
      if (err instanceof N.SyscallError && err.code === 'ENOENT') {
        throw new SoccrError('TARGET_STATE', `restoring socket: congestion control ${o.congestion} is not available in the target namespace`, err);
      }
      throw err;
    }
  }
}

function injectFromPeer(rawFd: number, s: SavedConnection, seq: number, ack: number, flags: number): void {
  const win = s.window ? s.window.sndWnd >>> s.sndWscale : 0xffff;
  const len = buildSegment({ from: s.remote, to: s.local, seq, ack, flags, window: win }, packetBuf.buf);
  const dest: SocketAddress = wireFamily(s.local) === 4 && isMappedIPv4(s.local) ? { family: 'ipv4', ip: s.local.ip.slice(7), port: 0 } : { ...s.local, port: 0 };
  const dlen = encodeSockaddr(dest, destBuf.buf);
  N.sendRaw(rawFd, packetBuf, len, destBuf, dlen);
}

/**
 * Rebuilds a connection from a saved state, optionally inside another network namespace. The new socket
 * is left in repair mode: it sends nothing until `resumeRestored`, so a network lock can sit in between.
 * The saved state is never modified.
 */
export function restore(s: SavedConnection, opts: RestoreOptions = {}): RestoredSocket {
  validateSaved(s);
  const m = bit(s.state);
  const domain = s.socketFamily === 'ipv4' ? N.AF_INET : N.AF_INET6;
  const needRaw = (m & (RECEIVED_FIN | OUR_FIN_ACKED)) !== 0;
  let fd = -1;
  let rawFd = -1;
  try {
    // Only the sockets are made inside the namespace: they stay in it, whichever thread uses them.
    const make = (): void => {
      fd = N.socket(domain, N.SOCK_STREAM | N.SOCK_CLOEXEC, N.IPPROTO_TCP);
      if (needRaw) {
        rawFd = N.socket(wireFamily(s.local) === 4 ? N.AF_INET : N.AF_INET6, N.SOCK_RAW | N.SOCK_CLOEXEC, N.IPPROTO_RAW);
      }
    };
    if (opts.netnsHandle) opts.netnsHandle.run(make);
    else inNetns(opts.netns, make);
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR, REPAIR_ON);
    const defaults = defaultsFor(fd, opts.netnsHandle?.path ?? opts.netns);
    // Buffer sizes as saved, or larger where the queues need room; a size the user set goes back to
    // exactly its value once the bytes are in.
    const lock = s.options.bufLock;
    const sndNeed = s.outqLen * 2 + 65536;
    const rcvNeed = s.inqLen * 2 + 65536;
    const growSnd = sndNeed > s.options.sndBuf;
    const growRcv = rcvNeed > s.options.rcvBuf;
    N.setsockoptInt(fd, N.SOL_SOCKET, N.SO.SNDBUFFORCE, Math.ceil((growSnd ? sndNeed : s.options.sndBuf) / 2));
    N.setsockoptInt(fd, N.SOL_SOCKET, N.SO.RCVBUFFORCE, Math.ceil((growRcv ? rcvNeed : s.options.rcvBuf) / 2));

    // Sequence numbers go in at the start of each queue: writing the bytes back moves them to the saved
    // values. A FIN counted in a saved sequence number is not part of any queue.
    const inqSeq = (s.inqSeq - s.inqLen - (m & RECEIVED_FIN ? 1 : 0)) >>> 0;
    const outqSeq = (s.outqSeq - s.outqLen - (m & SENT_FIN ? 1 : 0)) >>> 0;
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, SEND_QUEUE);
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.QUEUE_SEQ, outqSeq | 0);
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, RECV_QUEUE);
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.QUEUE_SEQ, inqSeq | 0);

    if (opts.transparent) {
      if (s.socketFamily === 'ipv4') N.setsockoptInt(fd, N.SOL_IP, N.IP_TRANSPARENT, 1);
      else N.setsockoptInt(fd, N.SOL_IPV6, N.IPV6_TRANSPARENT, 1);
    }
    const llen = encodeSockaddr(s.local, addrBuf.buf);
    try {
      N.bind(fd, addrBuf, llen);
    } catch (err) {
      throw targetError(`binding to ${formatAddress(s.local)}`, err);
    }
    const rlen = encodeSockaddr(s.remote, addrBuf.buf);
    try {
      N.connect(fd, addrBuf, rlen);
    } catch (err) {
      throw targetError(`connecting to ${formatAddress(s.remote)}`, err);
    }

    // Negotiated options: after connect, before any send-queue byte.
    const o = optsBuf.buf;
    let n = 0;
    const opt = (code: number, value: number): void => {
      o.writeUInt32LE(code, n * 8);
      o.writeUInt32LE(value >>> 0, n * 8 + 4);
      n++;
    };
    if (s.tcpOptions & TCPI_OPT_SACK) opt(4, 0);
    if (s.tcpOptions & TCPI_OPT_WSCALE) opt(3, s.sndWscale | (s.rcvWscale << 16));
    if (s.tcpOptions & TCPI_OPT_TIMESTAMPS) opt(8, 0);
    opt(2, s.mssClamp);
    N.setsockoptBytes(fd, N.SOL_TCP, N.TCP.REPAIR_OPTIONS, optsBuf, n * 8);
    if (s.tcpOptions & TCPI_OPT_TIMESTAMPS) N.setsockoptInt(fd, N.SOL_TCP, N.TCP.TIMESTAMP, s.timestamp | 0);

    // Queue bytes: unread data, then the sent-but-unacknowledged part (retransmitted on timeout), then
    // the never-sent tail as ordinary data with repair briefly off (without the window probe).
    if (s.inqLen > 0) {
      N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, RECV_QUEUE);
      writeQueue(fd, s.recvQueue, 'receive');
    }
    const sentLen = s.outqLen - s.unsentLen;
    if (sentLen > 0) {
      N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, SEND_QUEUE);
      writeQueue(fd, s.sendQueue.subarray(0, sentLen), 'send');
    }
    // Until it goes live, a write by whoever holds the socket must fail (EINVAL), not join a queue.
    if (s.inqLen > 0 || sentLen > 0) N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
    if (s.unsentLen > 0) {
      N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR, REPAIR_OFF_NO_PROBE);
      writeQueue(fd, s.sendQueue.subarray(sentLen), 'unsent');
      N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR, REPAIR_ON);
    }
    if (growSnd && lock & 1) N.setsockoptInt(fd, N.SOL_SOCKET, N.SO.SNDBUFFORCE, Math.ceil(s.options.sndBuf / 2));
    if (growRcv && lock & 2) N.setsockoptInt(fd, N.SOL_SOCKET, N.SO.RCVBUFFORCE, Math.ceil(s.options.rcvBuf / 2));
    // Setting a size locked it; sizes the kernel was autotuning go back to autotuning.
    if (lock !== BUF_LOCK_BOTH) N.setsockoptInt(fd, N.SOL_SOCKET, N.SO.BUF_LOCK, lock);

    // The window last: the kernel checks it against rcv_nxt, which the queue bytes moved. Where the
    // peer's FIN is still to come, rcv_nxt is one short of the saved value.
    if (s.window) {
      const w = windowBuf.buf;
      const finPending = m & RECEIVED_FIN ? 1 : 0;
      w.writeUInt32LE(s.window.sndWl1 >>> 0, 0);
      w.writeUInt32LE(s.window.sndWnd >>> 0, 4);
      w.writeUInt32LE(s.window.maxWindow >>> 0, 8);
      w.writeUInt32LE((s.window.rcvWnd + finPending) >>> 0, 12);
      w.writeUInt32LE((s.window.rcvWup - finPending) >>> 0, 16);
      N.setsockoptBytes(fd, N.SOL_TCP, N.TCP.REPAIR_WINDOW, windowBuf, 20);
    }

    // Half-closed states: put the FINs back in the order they happened.
    const sndUna = (s.outqSeq - s.outqLen - (m & SENT_FIN ? 1 : 0)) >>> 0;
    const ourFin = (): void => {
      // An acknowledged FIN goes in as already sent (send queue selected); otherwise as new.
      if (m & OUR_FIN_ACKED) N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, SEND_QUEUE);
      try {
        N.shutdown(fd, N.SHUT_WR);
      } catch (err) {
        // The peer's FIN, injected as the saved sequence numbers place it, already closed the socket.
        if (err instanceof N.SyscallError && err.code === 'ENOTCONN') {
          throw new SoccrError('INVALID_STATE', `invalid saved state: the rebuilt socket reached ${stateName(readTcpInfoHead(fd).state)} before its own FIN went back: its sequence numbers do not fit ${stateName(s.state)}`, err);
        }
        throw err;
      }
      if (m & OUR_FIN_ACKED) N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
    };
    if (m & OUR_FIN_FIRST) ourFin();
    if (m & RECEIVED_FIN) {
      N.setsockoptInt(rawFd, N.SOL_SOCKET, N.SO.MARK, SOCCR_MARK);
      injectFromPeer(rawFd, s, (s.inqSeq - 1) >>> 0, sndUna, TH_FIN | TH_ACK);
    }
    if (m & OUR_FIN_SECOND) ourFin();
    if (m & OUR_FIN_ACKED) {
      if (!(m & RECEIVED_FIN)) N.setsockoptInt(rawFd, N.SOL_SOCKET, N.SO.MARK, SOCCR_MARK);
      injectFromPeer(rawFd, s, s.inqSeq, s.outqSeq, TH_ACK);
    }
    if (needRaw) {
      const got = readTcpInfoHead(fd).state;
      if (got !== s.state) {
        // The kernel took the FINs the saved sequence numbers place, and they lead elsewhere: the state
        // does not hold together (or something in the target namespace dropped the injected segment).
        throw new SoccrError('INVALID_STATE', `invalid saved state: the rebuilt socket reached ${stateName(got)}, not ${stateName(s.state)}: its sequence numbers do not fit that state (or the injected FIN/ACK was dropped)`);
      }
    }
    applyUserOptions(fd, s, defaults);
    return { fd, reuseAddr: s.options.reuseAddr, state: s.state };
  } catch (err) {
    if (fd >= 0) N.closeQuietly(fd); // still in repair mode: vanishes silently
    throw kernelError('restoring socket', err);
  } finally {
    if (rawFd >= 0) N.closeQuietly(rawFd);
  }
}

/** Makes a restored socket live: repair off (with a window probe), then the user's SO_REUSEADDR. */
export function resumeRestored(sock: RestoredSocket): void {
  resume(sock);
}
