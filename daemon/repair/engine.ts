// The repair engine: freeze a TCP socket in repair mode, save everything needed to rebuild it, and
// rebuild it from that saved state in a new socket, in the order the kernel accepts.
//
// A rebuilt socket is held in two steps, because repair mode does not stop the kernel's timers: bytes
// written into the send queue in repair mode arm the retransmission timer (tcp_write_xmit treats them as
// sent, and tcp_event_new_data_sent arms the RTO; with SACK a tail-loss probe comes first), a never-sent
// tail arms the zero-window probe, SO_KEEPALIVE arms the keepalive timer, and a FIN taken in (the peer's,
// injected) is acknowledged; none of the timer handlers looks at repair mode, so each of them sends
// while the socket is still held. `restore` therefore builds only what arms nothing (sequence numbers,
// addresses, negotiated options, the receive queue, the user's options but keepalive): the held socket
// sends nothing, lock or no lock. `finishRestored` (or resumeRestored/resumeAll, which call it) writes
// the send queue, the window, the FINs and keepalive at go-live, while the destination's lock still holds.
import { constants as osConstants } from 'node:os';
import * as N from '../kernel/native';
import { SoccrError, kernelError } from '../../protocol/errors';
import { NetnsHandle } from '../kernel/netns';
import type { SocketDiag } from '../kernel/sockdiag';
import { TH_ACK, TH_FIN, buildSegment, wireFamily } from '../kernel/packet';
import { isLocalAddress } from '../kernel/local-address';
import {
  SOCKADDR_IN6_LEN,
  SOCKADDR_IN_LEN,
  SocketAddress,
  decodeSockaddr,
  encodeSockaddr,
  formatAddress,
  isLinkLocal,
  isMappedIPv4,
  parseIPv6,
} from '../../protocol/address';
import {
  RepairWindow,
  STATE_VERSION,
  SUPPORTED_STATES,
  SavedConnection,
  TCPI_OPT_SACK,
  TCPI_OPT_TIMESTAMPS,
  TCPI_OPT_WSCALE,
  OPTIONS_NOT_CARRIED,
  TcpState,
  UserSocketOptions,
  kernelTcpState,
  stateName,
} from '../../protocol/saved-state';

const REPAIR_ON = 1;
const REPAIR_OFF = 0; // sends a window probe in ESTABLISHED: the peer learns our window at once
const REPAIR_OFF_NO_PROBE = -1;
const NO_QUEUE = 0;
const ENOPROTOOPT = osConstants.errno.ENOPROTOOPT;
const RECV_QUEUE = 1;
const SEND_QUEUE = 2;

/** Mark carried by packets the engine injects, so that a network lock can let them through. */
export const SOCCR_MARK = 0x50cc;

const bit = (s: TcpState): number => 1 << s;
const MAX_RCV_WND = 65535 << 14;
/** Sequence number a is after b (modulo 2^32). */
const after = (a: number, b: number): boolean => ((b - a) | 0) < 0;
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
const ackPacketBuf = N.pinned(64);
const destBuf = N.pinned(N.SOCKADDR_STORAGE);
const deviceBuf = N.pinned(N.IFNAMSIZ);
const lingerBuf = N.pinned(8);
const rcvTimeoBuf = N.pinned(16);
const sndTimeoBuf = N.pinned(16);
// Each step's kernel calls go down in one batch (daemon/kernel/native.ts): one FFI call instead of about twenty.
const captureBatch = new N.KernelBatch(48);
const queueBatch = new N.KernelBatch(8);
const restoreBatch = new N.KernelBatch(64);
const liveBatch = new N.KernelBatch(48);
const socketsBatch = new N.KernelBatch(256);

/** A socket in repair mode, and what resuming it needs to put back. */
export interface FrozenSocket {
  fd: number;
  /** The user's SO_REUSEADDR, which turning repair mode off would clear. */
  reuseAddr: boolean;
  /**
   * The owner's SO_PEEK_OFF when it had set one (>= 0): switched off while frozen, because a peek at the
   * receive queue starts at that offset and moves it, and put back on resume.
   */
  peekOff?: number;
}

/** First 8 bytes of struct tcp_info: state, options and window scales. */
export interface TcpInfoHead {
  state: TcpState;
  options: number;
  sndWscale: number;
  rcvWscale: number;
}

export function readTcpInfoHead(fd: number): TcpInfoHead {
  N.getsockoptBytes(fd, N.SOL_TCP, N.TCP.INFO, info, 8);
  const b = info.buf;
  return { state: kernelTcpState(b[0]), options: b[5], sndWscale: b[6] & 0x0f, rcvWscale: b[6] >> 4 };
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

/** The user's SO_REUSEADDR of each socket, in one batch (pause needs it back at resume). */
export function reuseAddrs(fds: readonly number[]): boolean[] {
  const b = socketsBatch.reset();
  const reads = fds.map((fd) => b.getInt(fd, N.SOL_SOCKET, N.SO.REUSEADDR));
  b.run();
  const failed = b.firstFailure();
  if (failed >= 0) throw kernelError('reading SO_REUSEADDR', b.error(failed));
  return reads.map((op) => b.int(op) !== 0);
}

/** Repair mode on: the socket stops sending and its owner's reads and writes fail. */
export function pause(fd: number, knownReuseAddr?: boolean): FrozenSocket {
  return pauseAll([fd], [knownReuseAddr])[0];
}

/**
 * Repair mode on for every socket, in order, in one batch. `knownReuseAddr[i]`: SO_REUSEADDR of fds[i]
 * if the caller read it already (the crash journal needs it): one call less each inside the freeze. If
 * one fails, those already frozen are resumed and the error is thrown: nothing stays frozen.
 */
export function pauseAll(fds: readonly number[], knownReuseAddr: ReadonlyArray<boolean | undefined> = []): FrozenSocket[] {
  const b = socketsBatch.reset();
  const reads = fds.map((fd, i) => (knownReuseAddr[i] === undefined ? b.getInt(fd, N.SOL_SOCKET, N.SO.REUSEADDR) : -1));
  // SO_PEEK_OFF: -1 (off) unless the owner set it; a kernel without it for TCP (before 6.10) fails the
  // read, and then no peek offset can be in the way either.
  const peeks = fds.map((fd) => b.getInt(fd, N.SOL_SOCKET, N.SO.PEEK_OFF, N.NOSTOP));
  const repairs = fds.map((fd) => b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR, REPAIR_ON));
  b.run();
  const frozen: FrozenSocket[] = fds.map((fd, i) => ({ fd, reuseAddr: knownReuseAddr[i] ?? b.int(reads[i]) !== 0 }));
  // The first failure that matters (a peek offset's read may fail alone: see above).
  const mustSucceed = new Set([...reads.filter((op) => op >= 0), ...repairs]);
  let failed = b.firstFailure();
  while (failed >= 0 && !mustSucceed.has(failed)) failed = b.firstFailure(failed + 1);
  if (failed < 0) {
    frozen.forEach((sock, i) => {
      if (b.ok(peeks[i]) && b.int(peeks[i]) >= 0) sock.peekOff = b.int(peeks[i]);
    });
    try {
      clearPeekOffsets(frozen);
      return frozen;
    } catch (err) {
      resumeAll(frozen);
      throw kernelError('pausing socket (SO_PEEK_OFF off)', err);
    }
  }
  const err = kernelError('pausing socket (TCP_REPAIR on)', b.error(failed));
  resumeAll(frozen.filter((_, i) => b.ok(repairs[i])));
  throw err;
}

/** Peek offsets off while frozen (rare: one batch only when an owner set one). */
function clearPeekOffsets(frozen: readonly FrozenSocket[]): void {
  const set = frozen.filter((s) => s.peekOff !== undefined);
  if (set.length === 0) return;
  const b = socketsBatch.reset();
  for (const s of set) b.setInt(s.fd, N.SOL_SOCKET, N.SO.PEEK_OFF, -1);
  b.run();
  const failed = b.firstFailure();
  if (failed >= 0) throw b.error(failed);
}

/** Repair mode off: the connection goes on from where it is, with the user's options as they were. */
export function resume(sock: FrozenSocket): void {
  const err = resumeAll([sock])[0];
  if (err) throw err;
}

/**
 * resume for many sockets in one batch; each is tried whatever happens to the others. Returns, per
 * socket, its error or undefined.
 */
export function resumeAll(socks: readonly FrozenSocket[]): Array<SoccrError | undefined> {
  // A rebuilt socket whose go-live steps have not run gets them first; one that fails them stays held.
  const held = socks.filter(isHeldRestore);
  const unfinished = new Map<FrozenSocket, SoccrError>();
  finishRestoredAll(held).forEach((err, i) => {
    if (err) unfinished.set(held[i], err);
  });
  const ready = unfinished.size ? socks.filter((sock) => !unfinished.has(sock)) : socks;
  const errors = repairOffAll(ready);
  ready.forEach((sock, i) => {
    const to = (sock as Partial<RestoredSocket>).connectTo;
    if (to && !errors[i]) errors[i] = connectNow(sock.fd, to);
  });
  return unfinished.size ? socks.map((sock) => unfinished.get(sock) ?? errors[ready.indexOf(sock)]) : errors;
}

/**
 * A restored connect in progress goes on: repair is off, so connect() sends its SYN (with the saved
 * initial sequence number); non-blocking for the call only, the file's own flags put back.
 */
function connectNow(fd: number, to: SocketAddress): SoccrError | undefined {
  try {
    const flags = N.fcntl(fd, N.F_GETFL);
    N.fcntl(fd, N.F_SETFL, flags | N.O_NONBLOCK);
    try {
      N.connect(fd, addrBuf, encodeSockaddr(to, addrBuf.buf));
    } catch (err) {
      if (!(err instanceof N.SyscallError && err.code === 'EINPROGRESS')) throw err;
    } finally {
      N.fcntl(fd, N.F_SETFL, flags);
    }
    return undefined;
  } catch (err) {
    return kernelError(`connecting to ${formatAddress(to)} (SYN_SENT)`, err);
  }
}

function isHeldRestore(sock: FrozenSocket): sock is RestoredSocket {
  return (sock as Partial<RestoredSocket>).live !== undefined;
}

/** Repair off (with the window probe) and the user's options back, each socket whatever the others do. */
function repairOffAll(socks: readonly FrozenSocket[]): Array<SoccrError | undefined> {
  const b = socketsBatch.reset();
  const first = socks.map((sock, i) => {
    b.group = i;
    const op = b.setInt(sock.fd, N.SOL_TCP, N.TCP.REPAIR, REPAIR_OFF);
    if (sock.reuseAddr) b.setInt(sock.fd, N.SOL_SOCKET, N.SO.REUSEADDR, 1);
    if (sock.peekOff !== undefined) b.setInt(sock.fd, N.SOL_SOCKET, N.SO.PEEK_OFF, sock.peekOff);
    return op;
  });
  if (b.run() === 0) return socks.map(() => undefined);
  return socks.map((sock, i) => {
    const failed = b.firstFailure(first[i], i + 1 < socks.length ? first[i + 1] : b.length);
    return failed < 0 ? undefined : kernelError('resuming socket (TCP_REPAIR off)', b.error(failed));
  });
}

/**
 * Closes our descriptor of a socket in repair mode: when it is the last one, the connection vanishes
 * without FIN or RST.
 */
export function silentClose(sock: FrozenSocket): void {
  silentCloseAll([sock]);
}

/** silentClose for many sockets in one batch (with the raw sockets that held restores kept for go-live). */
export function silentCloseAll(socks: readonly FrozenSocket[]): void {
  const b = socketsBatch.reset();
  socks.forEach((sock, i) => {
    b.group = i;
    b.close(sock.fd);
    const live = (sock as Partial<RestoredSocket>).live;
    if (live && live.rawFd >= 0) b.close(live.rawFd, N.ALWAYS);
    if (live) (sock as RestoredSocket).live = undefined;
  });
  b.run();
}

const EMPTY = Buffer.alloc(0);

/**
 * Adds the peek of the selected repair queue, which must hold exactly `len` bytes, into `into[start..]`.
 * It asks for one byte more than expected: a longer queue than reported must be caught, not truncated.
 */
function addPeek(b: N.KernelBatch, fd: number, len: number, into: Buffer, start: number): number {
  return len === 0 ? -1 : b.recv(fd, into, start, len + 1, N.MSG_PEEK | N.MSG_DONTWAIT, len);
}

function queueMismatch(b: N.KernelBatch, op: number, len: number, what: string): SoccrError {
  const got = b.errno(op) ? `errno ${b.errno(op)}` : String(b.result(op));
  return new SoccrError('QUEUE_MISMATCH', `${what} queue: expected ${len} bytes, peek returned ${got}`);
}

/**
 * Memory for both queues, peeked in turn: the receive queue at 0, the send queue right after it (each
 * peek's extra byte lands where the next one starts, or in the last byte). The bytes are used as they
 * are: no copy.
 */
function queueMemory(inqLen: number, outqLen: number): Buffer {
  return inqLen + outqLen === 0 ? EMPTY : N.allocPinned(inqLen + outqLen + 1);
}

/**
 * Reads both queues of a socket saved with its queues pending (see capture). The socket must still be
 * frozen; afterwards no queue is selected.
 */
export function readQueues(sock: FrozenSocket, inqLen: number, outqLen: number): { recvQueue: Buffer; sendQueue: Buffer } {
  const fd = sock.fd;
  const mem = queueMemory(inqLen, outqLen);
  const b = queueBatch.reset();
  b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, RECV_QUEUE);
  const peekRecv = addPeek(b, fd, inqLen, mem, 0);
  b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, SEND_QUEUE);
  const peekSend = addPeek(b, fd, outqLen, mem, inqLen);
  b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE, N.ALWAYS);
  b.run();
  const failed = b.firstFailure();
  if (failed < 0) return { recvQueue: mem.subarray(0, inqLen), sendQueue: mem.subarray(inqLen, inqLen + outqLen) };
  if (failed === peekRecv) throw kernelError('reading queues', queueMismatch(b, failed, inqLen, 'receive'));
  if (failed === peekSend) throw kernelError('reading queues', queueMismatch(b, failed, outqLen, 'send'));
  throw kernelError('reading queues', b.error(failed));
}

const BUF_LOCK_BOTH = 3;

/** Before Linux 5.14 the kernel cannot tell SO_BUF_LOCK: keep the sizes as saved (locked). */
function bufLockOf(b: N.KernelBatch, op: number): number {
  return b.ok(op) && b.bytes(op).length === 4 ? b.bytes(op).readInt32LE(0) & BUF_LOCK_BOTH : BUF_LOCK_BOTH;
}

function cString(raw: Buffer): string {
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('latin1');
}

/** The options of OPTIONS_NOT_CARRIED, as capture reads them. */
type CarriedOptions = Pick<UserSocketOptions, keyof typeof OPTIONS_NOT_CARRIED>;

/** Socket options that are IPv4 for this connection: an IPv4 socket's, or an IPv4-mapped one's (its packets are IPv4). */
function ipv4Path(local: SocketAddress): boolean {
  return local.family === 'ipv4' || isMappedIPv4(local);
}

/** A struct timeval (two 64-bit words) in microseconds, at most 2^53 - 1. */
function timevalUs(raw: Buffer): number {
  const us = raw.readBigInt64LE(0) * 1_000_000n + raw.readBigInt64LE(8);
  return us > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(us);
}

/**
 * Adds the reads of the options carried since soccr.v1.SocketOptions field 15, in the same batch as the
 * rest of the save; what socket diagnostics reported (V6ONLY, FREEBIND, the bound interface's index)
 * spares its call. The returned function reads them once the batch ran without a failure.
 */
function addCarriedOptionReads(b: N.KernelBatch, fd: number, local: SocketAddress, diag: SocketDiag | undefined): () => CarriedOptions {
  const sockInt = (name: number): number => b.getInt(fd, N.SOL_SOCKET, name);
  const ttl = ipv4Path(local) ? b.getInt(fd, N.SOL_IP, N.IP_TTL) : b.getInt(fd, N.SOL_IPV6, N.IPV6_UNICAST_HOPS);
  const priority = sockInt(N.SO.PRIORITY);
  const rcvLowat = sockInt(N.SO.RCVLOWAT);
  const rcvTimeo = b.getBytes(fd, N.SOL_SOCKET, N.SO.RCVTIMEO, 16);
  const sndTimeo = b.getBytes(fd, N.SOL_SOCKET, N.SO.SNDTIMEO, 16);
  const linger = b.getBytes(fd, N.SOL_SOCKET, N.SO.LINGER, 8);
  const reusePort = sockInt(N.SO.REUSEPORT);
  const v6only = local.family === 'ipv4' || diag?.v6only !== undefined ? -1 : b.getInt(fd, N.SOL_IPV6, N.IPV6_V6ONLY);
  const freebind = diag?.freebind !== undefined ? -1 : b.getInt(fd, N.SOL_IP, N.IP_FREEBIND);
  // Only a socket bound to no interface has a name-less answer: socket diagnostics say which.
  const device = diag?.boundIf === 0 ? -1 : b.getBytes(fd, N.SOL_SOCKET, N.SO.BINDTODEVICE, N.IFNAMSIZ);
  const notsentLowat = b.getInt(fd, N.SOL_TCP, N.TCP.NOTSENT_LOWAT);
  const windowClamp = b.getInt(fd, N.SOL_TCP, N.TCP.WINDOW_CLAMP);
  return () => {
    const l = b.bytes(linger);
    return {
      ttl: b.int(ttl),
      priority: b.int(priority),
      rcvLowat: b.int(rcvLowat),
      rcvTimeoutUs: timevalUs(b.bytes(rcvTimeo)),
      sndTimeoutUs: timevalUs(b.bytes(sndTimeo)),
      lingerSeconds: l.readInt32LE(0) !== 0 ? l.readInt32LE(4) : undefined,
      reusePort: b.int(reusePort) !== 0,
      v6only: local.family === 'ipv6' && (diag?.v6only ?? b.int(v6only) !== 0),
      freebind: diag?.freebind ?? b.int(freebind) !== 0,
      bindDevice: device < 0 ? '' : cString(b.bytes(device)),
      notsentLowat: b.int(notsentLowat) >>> 0,
      windowClamp: b.int(windowClamp) >>> 0,
    };
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

/** What capture reads first, unless socket diagnostics reported it: the state, queue lengths, address. */
interface CaptureHead {
  head: TcpInfoHead;
  /** SIOCOUTQ, SIOCOUTQNSD and SIOCINQ as the kernel reports them */
  outq: number;
  unsent: number;
  inq: number;
  local: SocketAddress;
}

/** Adds the reads of a socket's CaptureHead; the returned function gives it once the batch ran (or throws). */
function addHeadReads(b: N.KernelBatch, fd: number): () => CaptureHead {
  const info = b.getBytes(fd, N.SOL_TCP, N.TCP.INFO, 8);
  const outq = b.ioctlInt(fd, N.SIOCOUTQ);
  const unsent = b.ioctlInt(fd, N.SIOCOUTQNSD);
  const inq = b.ioctlInt(fd, N.SIOCINQ);
  // The address is read here because the peer's (SO_PEERNAME) must be asked for at its exact size.
  const local = b.getsockname(fd, SOCKADDR_IN6_LEN);
  return () => {
    const failed = b.firstFailure(info, local + 1);
    if (failed >= 0) throw b.error(failed);
    const h = b.bytes(info);
    return {
      head: { state: kernelTcpState(h[0]), options: h[5], sndWscale: h[6] & 0x0f, rcvWscale: h[6] >> 4 },
      outq: b.int(outq),
      unsent: b.int(unsent),
      inq: b.int(inq),
      local: decodeSockaddr(b.bytes(local), b.bytes(local).length),
    };
  };
}

/**
 * Adds the reads that save a paused socket whose head is known (from socket diagnostics or
 * addHeadReads); the returned function builds the Capture once the batch ran, or throws. The socket's
 * queue bytes are peeked into memory of their own, used as they are.
 */
function addStateReads(b: N.KernelBatch, sock: FrozenSocket, eagerLimit: number, first: CaptureHead | undefined, diag: SocketDiag | undefined): () => Capture {
  const fd = sock.fd;
  // What socket diagnostics reported for this (frozen) socket spares the calls that read the same.
  const head = diag ?? (first as CaptureHead).head;
  if (!SUPPORTED_STATES.has(head.state)) {
    throw new SoccrError('UNSUPPORTED_STATE', `connection is in state ${stateName(head.state)}, which cannot be checkpointed`);
  }
  const state = head.state;
  const m = bit(state);
  let outqLen = diag ? diag.wqueue : (first as CaptureHead).outq;
  let unsentLen = diag ? diag.notsent : (first as CaptureHead).unsent;
  // SIOCINQ leaves out the peer's FIN, which the diagnostics count in.
  const inqLen = diag ? Math.max(0, diag.rqueue - (m & RECEIVED_FIN && diag.rqueue > 0 ? 1 : 0)) : (first as CaptureHead).inq;
  if (state === TcpState.CLOSE || state === TcpState.SYN_SENT) {
    // A closed connection keeps nothing the peer could still acknowledge; a connect in progress has
    // nothing queued but its SYN (which socket diagnostics count in).
    outqLen = 0;
    unsentLen = 0;
  } else if (m & SENT_FIN) {
    // Our FIN is counted in the send figures but carries no data.
    if (outqLen > 0) outqLen--;
    if (unsentLen > 0) unsentLen--;
  }
  const local = diag?.local ?? (first as CaptureHead).local;
  const socketFamily = local.family;
  const eager = inqLen + outqLen <= eagerLimit;
  const mem = eager ? queueMemory(inqLen, outqLen) : EMPTY;

  const mss = b.getInt(fd, N.SOL_TCP, N.TCP.MAXSEG);
  const ts = head.options & TCPI_OPT_TIMESTAMPS ? b.getInt(fd, N.SOL_TCP, N.TCP.TIMESTAMP) : -1;
  const win = b.getBytes(fd, N.SOL_TCP, N.TCP.REPAIR_WINDOW, 20, N.NOSTOP);
  b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, RECV_QUEUE);
  const inqSeq = b.getInt(fd, N.SOL_TCP, N.TCP.QUEUE_SEQ);
  const peekRecv = eager ? addPeek(b, fd, inqLen, mem, 0) : -1;
  b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, SEND_QUEUE);
  const outqSeq = b.getInt(fd, N.SOL_TCP, N.TCP.QUEUE_SEQ);
  const peekSend = eager ? addPeek(b, fd, outqLen, mem, inqLen) : -1;
  // Whatever happened, no queue stays selected on a socket its owner may still use.
  b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE, N.ALWAYS);
  const remote = diag ? -1 : b.getBytes(fd, N.SOL_SOCKET, N.SO.PEERNAME, local.family === 'ipv4' ? SOCKADDR_IN_LEN : SOCKADDR_IN6_LEN);
  // The user's options, in the order the per-call engine read them.
  const cong = diag?.congestion !== undefined ? -1 : b.getBytes(fd, N.SOL_TCP, N.TCP.CONGESTION, 16);
  const tcpInt = (name: number): number => b.getInt(fd, N.SOL_TCP, name);
  const sockInt = (name: number): number => b.getInt(fd, N.SOL_SOCKET, name);
  const noDelay = tcpInt(N.TCP.NODELAY);
  const cork = tcpInt(N.TCP.CORK);
  const keepAlive = sockInt(N.SO.KEEPALIVE);
  const keepIdle = tcpInt(N.TCP.KEEPIDLE);
  const keepIntvl = tcpInt(N.TCP.KEEPINTVL);
  const keepCnt = tcpInt(N.TCP.KEEPCNT);
  const userTimeout = tcpInt(N.TCP.USER_TIMEOUT);
  const sndBuf = diag?.sndBuf !== undefined ? -1 : sockInt(N.SO.SNDBUF);
  const rcvBuf = diag?.rcvBuf !== undefined ? -1 : sockInt(N.SO.RCVBUF);
  const tos = diag?.tos !== undefined ? -1 : socketFamily === 'ipv4' ? b.getInt(fd, N.SOL_IP, N.IP_TOS) : b.getInt(fd, N.SOL_IPV6, N.IPV6_TCLASS);
  const mark = diag?.mark !== undefined ? -1 : sockInt(N.SO.MARK);
  const carried = addCarriedOptionReads(b, fd, local, diag);
  const bufLock = b.getBytes(fd, N.SOL_SOCKET, N.SO.BUF_LOCK, 4, N.NOSTOP);

  return () => {
    const failed = b.firstFailure(mss, bufLock + 1);
    if (failed >= 0 && failed === peekRecv) throw queueMismatch(b, failed, inqLen, 'receive');
    if (failed >= 0 && failed === peekSend) throw queueMismatch(b, failed, outqLen, 'send');
    if (failed >= 0 && failed !== win && failed !== bufLock) throw b.error(failed);
    let window: RepairWindow | undefined;
    if (b.ok(win) && b.bytes(win).length >= 20) {
      const w = b.bytes(win);
      window = { sndWl1: w.readUInt32LE(0), sndWnd: w.readUInt32LE(4), maxWindow: w.readUInt32LE(8), rcvWnd: w.readUInt32LE(12), rcvWup: w.readUInt32LE(16) };
    } else if (b.failed(win) && b.errno(win) !== ENOPROTOOPT /* kernel before 4.8 */) {
      throw new N.SyscallError('getsockopt', b.errno(win), 'TCP_REPAIR_WINDOW');
    }
    const options: UserSocketOptions = {
      reuseAddr: sock.reuseAddr,
      noDelay: b.int(noDelay) !== 0,
      cork: b.int(cork) !== 0,
      keepAlive: b.int(keepAlive) !== 0,
      keepIdle: b.int(keepIdle),
      keepIntvl: b.int(keepIntvl),
      keepCnt: b.int(keepCnt),
      userTimeout: b.int(userTimeout),
      congestion: diag?.congestion ?? cString(b.bytes(cong)),
      sndBuf: diag?.sndBuf ?? b.int(sndBuf),
      rcvBuf: diag?.rcvBuf ?? b.int(rcvBuf),
      tos: diag?.tos ?? b.int(tos),
      mark: diag?.mark ?? b.int(mark),
      bufLock: bufLockOf(b, bufLock),
      ...carried(),
    };
    // A link-local address means something only with its interface: the one the socket is bound to.
    const scoped = (a: SocketAddress): SocketAddress => (options.bindDevice !== '' && isLinkLocal(a) ? { ...a, scope: options.bindDevice } : a);
    const saved: SavedConnection = {
      version: STATE_VERSION,
      state,
      socketFamily,
      local: scoped(local),
      remote: scoped(diag?.remote ?? decodeSockaddr(b.bytes(remote), b.bytes(remote).length)),
      inqSeq: b.int(inqSeq) >>> 0,
      outqSeq: b.int(outqSeq) >>> 0,
      inqLen,
      outqLen,
      unsentLen,
      mssClamp: b.int(mss),
      tcpOptions: head.options,
      sndWscale: head.options & TCPI_OPT_WSCALE ? head.sndWscale : 0,
      rcvWscale: head.options & TCPI_OPT_WSCALE ? head.rcvWscale : 0,
      timestamp: ts < 0 ? 0 : b.int(ts) >>> 0,
      window,
      recvQueue: eager ? mem.subarray(0, inqLen) : EMPTY,
      sendQueue: eager ? mem.subarray(inqLen, inqLen + outqLen) : EMPTY,
      options,
    };
    return { state: saved, queuesPending: !eager };
  };
}

/** No queue selected on a socket whose save failed before its batch's own cleanup could run. */
function clearQueue(fd: number): void {
  try {
    N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
  } catch {
    /* the socket may be gone */
  }
}

/**
 * Saves a paused socket, taking its queue bytes only if both together fit in `eagerLimit` bytes, so that
 * a caller streaming many connections never holds every queue in memory at once. Its kernel calls go in
 * one batch, two without socket diagnostics (the queue lengths decide what the second one reads).
 */
export function capture(sock: FrozenSocket, eagerLimit: number, diag?: SocketDiag): Capture {
  return captureAll([sock], eagerLimit, diag ? [diag] : [])[0];
}

/**
 * capture for many paused sockets at once: two batches for all of them (one where socket diagnostics
 * answered for every socket). `diags[i]`: what socket diagnostics reported of socks[i], if anything.
 * Throws the first socket's error (in order) if any fails.
 */
export function captureAll(socks: readonly FrozenSocket[], eagerLimit: number, diags: ReadonlyArray<SocketDiag | undefined> = []): Capture[] {
  let b = captureBatch.reset();
  // Which sockets' batch cleanup ran (each group's ALWAYS op): the others get theirs call by call.
  const cleared = new Set<number>();
  try {
    const heads = socks.map((sock, i) => {
      b.group = i;
      return diags[i] ? undefined : addHeadReads(b, sock.fd);
    });
    b.run();
    const firsts = heads.map((read) => read?.());
    b = captureBatch.reset();
    const finishers = socks.map((sock, i) => {
      b.group = i;
      return addStateReads(b, sock, eagerLimit, firsts[i], diags[i]);
    });
    b.run();
    socks.forEach((_, i) => cleared.add(i));
    return finishers.map((finish) => finish());
  } catch (err) {
    socks.forEach((sock, i) => {
      if (!cleared.has(i)) clearQueue(sock.fd);
    });
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
  validateCarried(s, bad);
  if (s.window) {
    // What TCP_REPAIR_WINDOW checks, against rcv_nxt as restore() leaves it (see there).
    const w = s.window;
    const fin = bit(s.state) & RECEIVED_FIN ? 1 : 0;
    const rcvNxt = (s.inqSeq - fin) >>> 0;
    if (w.maxWindow < w.sndWnd) bad('window: max_window below snd_wnd');
    // No socket announces more than 65535 << 14; a larger rcv_wnd the kernel refuses (wrapping).
    if (w.rcvWnd > MAX_RCV_WND) bad(`window: rcv_wnd ${w.rcvWnd} above 65535 << 14`);
    // snd_wl1 beyond the receive window is not refused: a real socket can have it (restore clamps it).
    // rcv_wup is copied from rcv_nxt whenever a window is announced, and rcv_nxt only grows: no real
    // socket has it beyond.
    if (after((w.rcvWup - fin) >>> 0, rcvNxt)) bad('window: rcv_wup beyond rcv_nxt');
  }
}

/** The options carried since field 15: what the kernel would refuse halfway through the rebuild. */
function validateCarried(s: SavedConnection, bad: (msg: string) => never): void {
  const o = s.options;
  const v4 = ipv4Path(s.local);
  // IP_TTL takes 1..255, IPV6_UNICAST_HOPS 0..255.
  if (o.ttl !== undefined && (!Number.isInteger(o.ttl) || o.ttl < (v4 ? 1 : 0) || o.ttl > 255))
    bad(`${v4 ? 'TTL' : 'hop limit'} ${o.ttl} outside ${v4 ? 1 : 0}..255`);
  if (o.rcvLowat < 0) bad(`SO_RCVLOWAT ${o.rcvLowat} negative`);
  for (const us of [o.rcvTimeoutUs, o.sndTimeoutUs]) if (!Number.isSafeInteger(us) || us < 0) bad(`socket timeout ${us} us`);
  if (o.lingerSeconds !== undefined && o.lingerSeconds < 0) bad(`SO_LINGER ${o.lingerSeconds} s negative`);
  if (o.v6only && (s.socketFamily !== 'ipv6' || isMappedIPv4(s.local))) bad('IPV6_V6ONLY on a connection that is not IPv6');
  const scopes = new Set([o.bindDevice, s.local.scope, s.remote.scope].filter((x): x is string => !!x));
  if (scopes.size > 1) bad(`bound to more than one interface (${[...scopes].join(', ')})`);
  for (const a of [s.local, s.remote]) if (isLinkLocal(a) && scopes.size === 0) bad(`link-local address ${a.ip} without its interface`);
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
  /** What going live still has to write (see the top of this file); undefined once finishRestored ran. */
  live?: LiveSteps;
  /** SYN_SENT: the peer its connect goes to when it goes live */
  connectTo?: SocketAddress;
}

/** The part of a rebuild that would make a held socket send, kept for go-live. */
interface LiveSteps {
  /** the saved state (its receive queue dropped: already in the socket) */
  saved: SavedConnection;
  /** the raw socket, made in the target namespace, that injects the peer's FIN or ACK; -1 if none */
  rawFd: number;
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
  /** IP_TTL and, on an IPv6 socket, IPV6_UNICAST_HOPS (-1 on an IPv4 one) */
  ttl: number;
  hopLimit: number;
  readAt: number;
}
// Sysctls rarely change; a short lifetime bounds how long a change can go unnoticed.
const DEFAULTS_TTL_MS = 2000;
const netnsDefaults = new Map<string, NetnsDefaults>();

/** The namespace's cached defaults, or undefined when they must be read again (from the new socket). */
function cachedDefaults(key: string): NetnsDefaults | undefined {
  const d = netnsDefaults.get(key);
  return d && Date.now() - d.readAt <= DEFAULTS_TTL_MS ? d : undefined;
}

/** Adds the reads of the defaults from the new socket itself, before any option is set on it. */
function addDefaultsReads(b: N.KernelBatch, fd: N.FdArg, domain: number): () => NetnsDefaults {
  const cong = b.getBytes(fd, N.SOL_TCP, N.TCP.CONGESTION, 16);
  const idle = b.getInt(fd, N.SOL_TCP, N.TCP.KEEPIDLE);
  const intvl = b.getInt(fd, N.SOL_TCP, N.TCP.KEEPINTVL);
  const cnt = b.getInt(fd, N.SOL_TCP, N.TCP.KEEPCNT);
  const ttl = b.getInt(fd, N.SOL_IP, N.IP_TTL);
  const hops = domain === N.AF_INET6 ? b.getInt(fd, N.SOL_IPV6, N.IPV6_UNICAST_HOPS) : -1;
  return () => ({
    keepIdle: b.int(idle),
    keepIntvl: b.int(intvl),
    keepCnt: b.int(cnt),
    congestion: cString(b.bytes(cong)),
    ttl: b.int(ttl),
    hopLimit: hops < 0 ? -1 : b.int(hops),
    readAt: Date.now(),
  });
}

/**
 * Adds the user's options, skipping every one a fresh socket already has (each call costs the kernel
 * time too). Returns the op setting the congestion control, or -1.
 */
function addUserOptions(b: N.KernelBatch, fd: N.FdArg, s: SavedConnection, d: NetnsDefaults): number {
  const o = s.options;
  const set = (level: number, name: number, value: number, dflt: number): void => {
    if (value !== dflt) b.setInt(fd, level, name, value);
  };
  // Kernel constants for a new socket: all off, no timeout, no TOS, no mark.
  set(N.SOL_TCP, N.TCP.NODELAY, o.noDelay ? 1 : 0, 0);
  set(N.SOL_TCP, N.TCP.CORK, o.cork ? 1 : 0, 0);
  // SO_KEEPALIVE is set at go-live (addLiveSteps): it arms a timer that would send from a held socket.
  set(N.SOL_TCP, N.TCP.USER_TIMEOUT, o.userTimeout, 0);
  set(N.SOL_SOCKET, N.SO.MARK, o.mark, 0);
  if (s.socketFamily === 'ipv4') set(N.SOL_IP, N.IP_TOS, o.tos, 0);
  else set(N.SOL_IPV6, N.IPV6_TCLASS, o.tos, 0);
  addCarriedOptions(b, fd, s, d);
  // The namespace's sysctl defaults.
  set(N.SOL_TCP, N.TCP.KEEPIDLE, o.keepIdle, d.keepIdle);
  set(N.SOL_TCP, N.TCP.KEEPINTVL, o.keepIntvl, d.keepIntvl);
  set(N.SOL_TCP, N.TCP.KEEPCNT, o.keepCnt, d.keepCnt);
  if (!o.congestion || o.congestion === d.congestion) return -1;
  textBuf.buf.fill(0, 0, 16);
  textBuf.buf.write(o.congestion, 'latin1');
  return b.setBytes(fd, N.SOL_TCP, N.TCP.CONGESTION, textBuf.buf, o.congestion.length);
}

/** The interface the restored socket binds to: the saved SO_BINDTODEVICE, or a link-local address's scope. */
function boundDevice(s: SavedConnection): string {
  return s.options.bindDevice !== '' ? s.options.bindDevice : (s.local.scope ?? s.remote.scope ?? '');
}

/** Adds SO_BINDTODEVICE; a namespace without that interface refuses the connection, naming it. */
function addBindToDevice(b: N.KernelBatch, steps: Map<number, StepError>, fd: N.FdArg, device: string): void {
  deviceBuf.buf.fill(0);
  deviceBuf.buf.write(device, 'latin1');
  steps.set(b.setBytes(fd, N.SOL_SOCKET, N.SO.BINDTODEVICE, deviceBuf.buf, device.length + 1), (bb, op) => {
    const err = bb.error(op);
    if (err.code !== 'ENODEV') return err;
    return new SoccrError(
      'TARGET_STATE',
      `restoring socket: the target namespace has no interface ${device}, which the connection is bound to (SO_BINDTODEVICE or an IPv6 link-local scope)`,
      err,
    );
  });
}

function writeTimeval(into: Buffer, us: number): Buffer {
  into.writeBigInt64LE(BigInt(Math.floor(us / 1_000_000)), 0);
  into.writeBigInt64LE(BigInt(us % 1_000_000), 8);
  return into;
}

/**
 * Adds the options carried since soccr.v1.SocketOptions field 15, each only where it differs from what a
 * new socket has (absent ones, from older states, never): after connect, so that bind and connect work
 * as without them (IP_FREEBIND would let bind take an address the namespace lacks), after IP_TOS (which
 * moves SO_PRIORITY) and SO_RCVLOWAT (which can move the window clamp).
 */
function addCarriedOptions(b: N.KernelBatch, fd: N.FdArg, s: SavedConnection, d: NetnsDefaults): void {
  const o = s.options;
  if (o.ttl !== undefined) {
    if (ipv4Path(s.local)) {
      if (o.ttl !== d.ttl) b.setInt(fd, N.SOL_IP, N.IP_TTL, o.ttl);
    } else if (o.ttl !== d.hopLimit) b.setInt(fd, N.SOL_IPV6, N.IPV6_UNICAST_HOPS, o.ttl);
  }
  const tosMovedPriority = s.socketFamily === 'ipv4' && o.tos !== 0;
  if (o.priority !== undefined && (o.priority !== 0 || tosMovedPriority)) b.setInt(fd, N.SOL_SOCKET, N.SO.PRIORITY, o.priority);
  if (o.rcvLowat > 1) b.setInt(fd, N.SOL_SOCKET, N.SO.RCVLOWAT, o.rcvLowat);
  if (o.rcvTimeoutUs > 0) b.setBytes(fd, N.SOL_SOCKET, N.SO.RCVTIMEO, writeTimeval(rcvTimeoBuf.buf, o.rcvTimeoutUs), 16);
  if (o.sndTimeoutUs > 0) b.setBytes(fd, N.SOL_SOCKET, N.SO.SNDTIMEO, writeTimeval(sndTimeoBuf.buf, o.sndTimeoutUs), 16);
  if (o.lingerSeconds !== undefined) {
    lingerBuf.buf.writeInt32LE(1, 0);
    lingerBuf.buf.writeInt32LE(o.lingerSeconds, 4);
    b.setBytes(fd, N.SOL_SOCKET, N.SO.LINGER, lingerBuf.buf, 8);
  }
  if (o.reusePort) b.setInt(fd, N.SOL_SOCKET, N.SO.REUSEPORT, 1);
  if (o.freebind) b.setInt(fd, N.SOL_IP, N.IP_FREEBIND, 1);
  if (o.notsentLowat !== 0) b.setInt(fd, N.SOL_TCP, N.TCP.NOTSENT_LOWAT, o.notsentLowat | 0);
  // TCP_WINDOW_CLAMP goes in at go-live, after the repair window (addLiveSteps).
}

/** Adds a segment that appears to come from the peer, sent through the raw socket; `packet` must stay untouched until the batch ran. */
function addInjectFromPeer(b: N.KernelBatch, rawFd: N.FdArg, packet: N.PinnedBuffer, s: SavedConnection, seq: number, ack: number, flags: number): number {
  const win = s.window ? s.window.sndWnd >>> s.sndWscale : 0xffff;
  const len = buildSegment({ from: s.remote, to: s.local, seq, ack, flags, window: win }, packet.buf);
  const dest: SocketAddress =
    wireFamily(s.local) === 4 && isMappedIPv4(s.local) ? { family: 'ipv4', ip: s.local.ip.slice(7), port: 0 } : { ...s.local, port: 0 };
  const dlen = encodeSockaddr(dest, destBuf.buf);
  return b.sendTo(rawFd, packet, len, destBuf.buf, dlen);
}

/** The error of a failed restore step, as a caller should see it. */
type StepError = (b: N.KernelBatch, op: number) => Error;
const syscallStep: StepError = (b, op) => b.error(op);

/**
 * Rebuilds a connection from a saved state, optionally inside another network namespace, as far as a
 * held socket may be built: in repair mode, and nothing in it that would make the kernel send (see the
 * top of this file); the rest is written by finishRestored at go-live. The saved state is never
 * modified. Its kernel calls go in one batch (two when the namespace's defaults must be read again),
 * the namespace entered and left within it.
 */
export function restore(s: SavedConnection, opts: RestoreOptions = {}): RestoredSocket {
  validateSaved(s);
  const m = bit(s.state);
  const domain = s.socketFamily === 'ipv4' ? N.AF_INET : N.AF_INET6;
  const needRaw = (m & (RECEIVED_FIN | OUR_FIN_ACKED)) !== 0;
  const ownHandle = !opts.netnsHandle && opts.netns ? NetnsHandle.open(opts.netns) : undefined;
  const ns = opts.netnsHandle ?? ownHandle;
  if (needRaw) {
    try {
      refuseSpoofedInjection(s, ns);
    } catch (err) {
      ownHandle?.close();
      throw err;
    }
  }
  const b = restoreBatch.reset();
  // What each step's failure means to the caller (by op index); other failures are plain kernel errors.
  const steps = new Map<number, StepError>();
  let fd = -1;
  let rawFd = -1;
  try {
    // Only the sockets are made inside the namespace: they stay in it, whichever thread uses them.
    const enter = ns?.enterFds();
    if (ns && enter) steps.set(b.setns(enter.target, N.CLONE_NEWNET), (bb, op) => kernelError(`entering network namespace ${ns.path}`, bb.error(op)));
    const sockOp = b.socket(domain, N.SOCK_STREAM | N.SOCK_CLOEXEC, N.IPPROTO_TCP);
    const rawOp = needRaw ? b.socket(wireFamily(s.local) === 4 ? N.AF_INET : N.AF_INET6, N.SOCK_RAW | N.SOCK_CLOEXEC, N.IPPROTO_RAW) : -1;
    const back = enter ? b.setns(enter.home, N.CLONE_NEWNET, N.ALWAYS) : -1;
    // Until the batch has run, the sockets' fds are the results of the ops that make them.
    const learnFds = (): void => {
      if (b.ok(sockOp)) fd = b.result(sockOp);
      if (rawOp >= 0 && b.ok(rawOp)) rawFd = b.result(rawOp);
      if (back >= 0 && !b.ok(back)) throw kernelError("returning to the daemon's network namespace", b.error(back));
    };
    b.setInt({ op: sockOp }, N.SOL_TCP, N.TCP.REPAIR, REPAIR_ON);
    // By the namespace's identity: two paths to one namespace share, one path reused by another does not.
    // And by family: an IPv6 socket reports its hop limit, an IPv4 one cannot.
    const key = `${ns && !ns.isHome ? ns.id : ''}/${domain}`;
    const defaults = cachedDefaults(key);
    if (defaults) {
      addHoldSteps(b, steps, s, opts, defaults, { op: sockOp });
      runSteps(b, steps, learnFds);
    } else {
      // The options to set depend on the namespace's defaults, read from the new socket: two batches.
      const read = addDefaultsReads(b, { op: sockOp }, domain);
      runSteps(b, steps, learnFds);
      const fresh = read();
      netnsDefaults.set(key, fresh);
      b.reset();
      steps.clear();
      addHoldSteps(b, steps, s, opts, fresh, fd);
      runSteps(b, steps);
    }
    // Only the bytes go-live writes are kept (the receive queue is in the socket): the rest of a
    // stream's buffer is not held with them.
    const saved: SavedConnection = { ...s, recvQueue: EMPTY, sendQueue: ownBytes(s.sendQueue) };
    const restored: RestoredSocket = { fd, reuseAddr: s.options.reuseAddr, state: s.state, live: { saved, rawFd } };
    if (s.state === TcpState.SYN_SENT) restored.connectTo = s.remote;
    rawFd = -1;
    return restored;
  } catch (err) {
    if (fd >= 0) N.closeQuietly(fd); // still in repair mode: vanishes silently
    throw kernelError('restoring socket', err);
  } finally {
    if (rawFd >= 0) N.closeQuietly(rawFd);
    ownHandle?.close();
  }
}

/** `bytes` in memory of their own, unless they are all of it already. */
function ownBytes(bytes: Buffer): Buffer {
  return bytes.length === 0 ? EMPTY : bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length ? bytes : Buffer.from(bytes);
}

/**
 * Writes what a held socket was built without: its send queue, window, FINs and keepalive, in the order
 * the kernel accepts, then it is ready for repair off. Each socket whatever the others do (one batch
 * each); returns, per socket, its error or undefined. Run while the destination's network lock still
 * holds: a segment the kernel sends meanwhile (a FIN_WAIT1 socket's FIN, the ACK of an injected FIN) is
 * dropped there and sent again by TCP, whereas a peer's segment that arrived half way through could
 * acknowledge bytes not yet written back, and be dropped by the socket.
 */
export function finishRestoredAll(socks: readonly RestoredSocket[]): Array<SoccrError | undefined> {
  return socks.map((sock) => {
    const live = sock.live;
    if (!live) return undefined;
    try {
      finishOne(sock.fd, live);
      return undefined;
    } catch (err) {
      return kernelError('making a restored socket live', err);
    } finally {
      if (live.rawFd >= 0) N.closeQuietly(live.rawFd);
      sock.live = undefined;
    }
  });
}

function finishOne(fd: number, live: LiveSteps): void {
  const s = live.saved;
  const b = liveBatch.reset();
  const steps = new Map<number, StepError>();
  const stateCheck = addLiveSteps(b, steps, s, fd, live.rawFd);
  runSteps(b, steps);
  if (stateCheck < 0) return;
  const got = kernelTcpState(b.bytes(stateCheck)[0]);
  if (got !== s.state) {
    // The kernel took the FINs the saved sequence numbers place, and they lead elsewhere: the state
    // does not hold together (or something in the target namespace dropped the injected segment).
    throw new SoccrError(
      'INVALID_STATE',
      `invalid saved state: the rebuilt socket reached ${stateName(got)}, not ${stateName(s.state)}: its sequence numbers do not fit that state (or the injected FIN/ACK was dropped)`,
    );
  }
}

/**
 * A half-closed state is rebuilt with a segment that seems to come from the peer (its FIN, or the ACK
 * of our FIN), sent through a raw socket to the connection's local address. Only where that address is
 * the target namespace's own does the kernel take it in; anywhere else (a transparent restore before the
 * address has moved) it would leave on the wire with the peer's address as source. So such a state is
 * refused, with nothing built, until its local address is there.
 */
function refuseSpoofedInjection(s: SavedConnection, ns: NetnsHandle | undefined): void {
  if (isLocalAddress(ns, s.local)) return;
  throw new SoccrError(
    'TARGET_STATE',
    `restoring a ${stateName(s.state)} connection ${formatAddress(s.local)} <-> ${formatAddress(s.remote)}: its local address ${s.local.ip} is not an address of ${ns ? `network namespace ${ns.path}` : "the daemon's network namespace"}, and rebuilding a half-closed connection injects a segment from the peer's address to it, which would leave the namespace as a spoofed packet: move the address there first, then restore`,
  );
}

/** Runs the batch; `after` sees it first (fds to learn even on failure), then the first failure throws. */
function runSteps(b: N.KernelBatch, steps: Map<number, StepError>, after?: () => void): void {
  b.run();
  after?.();
  const failed = b.firstFailure();
  if (failed >= 0) throw (steps.get(failed) ?? syscallStep)(b, failed);
}

/** Buffer sizes as saved, or larger where the queues need room (then set back once the bytes are in). */
function bufferPlan(s: SavedConnection): { growSnd: boolean; growRcv: boolean; sndNeed: number; rcvNeed: number } {
  const sndNeed = s.outqLen * 2 + 65536;
  const rcvNeed = s.inqLen * 2 + 65536;
  return { growSnd: sndNeed > s.options.sndBuf, growRcv: rcvNeed > s.options.rcvBuf, sndNeed, rcvNeed };
}

/**
 * Adds the held part of the rebuild, in the order the kernel accepts (docs: tcp-repair.md), to a batch
 * whose socket is in repair mode already: everything that arms no timer. `fd`: a number, or the op of
 * this batch that makes it.
 */
function addHoldSteps(b: N.KernelBatch, steps: Map<number, StepError>, s: SavedConnection, opts: RestoreOptions, defaults: NetnsDefaults, fd: N.FdArg): void {
  const m = bit(s.state);
  // Buffer sizes as saved, or larger where the queues need room; a size the user set goes back to
  // exactly its value once the bytes are in.
  const { growSnd, growRcv, sndNeed, rcvNeed } = bufferPlan(s);
  b.setInt(fd, N.SOL_SOCKET, N.SO.SNDBUFFORCE, Math.ceil((growSnd ? sndNeed : s.options.sndBuf) / 2));
  b.setInt(fd, N.SOL_SOCKET, N.SO.RCVBUFFORCE, Math.ceil((growRcv ? rcvNeed : s.options.rcvBuf) / 2));

  // Sequence numbers go in at the start of each queue: writing the bytes back moves them to the saved
  // values. A FIN counted in a saved sequence number is not part of any queue.
  const inqSeq = (s.inqSeq - s.inqLen - (m & RECEIVED_FIN ? 1 : 0)) >>> 0;
  // A connect in progress: write_seq counts its SYN, which the connect at go-live sends again with the
  // same initial sequence number (libsoccr does the same).
  const outqSeq = (s.outqSeq - s.outqLen - (m & SENT_FIN ? 1 : 0) - (s.state === TcpState.SYN_SENT ? 1 : 0)) >>> 0;
  b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, SEND_QUEUE);
  b.setInt(fd, N.SOL_TCP, N.TCP.QUEUE_SEQ, outqSeq | 0);
  b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, RECV_QUEUE);
  b.setInt(fd, N.SOL_TCP, N.TCP.QUEUE_SEQ, inqSeq | 0);

  if (opts.transparent) {
    if (s.socketFamily === 'ipv4') b.setInt(fd, N.SOL_IP, N.IP_TRANSPARENT, 1);
    else b.setInt(fd, N.SOL_IPV6, N.IPV6_TRANSPARENT, 1);
  }
  // Before bind, which refuses a V6ONLY change afterwards, and which needs the interface to find an
  // address of a VRF or a link-local scope (the kernel maps the name to this namespace's index).
  if (s.options.v6only) b.setInt(fd, N.SOL_IPV6, N.IPV6_V6ONLY, 1);
  const device = boundDevice(s);
  if (device) addBindToDevice(b, steps, fd, device);
  const llen = encodeSockaddr(s.local, addrBuf.buf);
  steps.set(b.bind(fd, addrBuf.buf, llen), (bb, op) => targetError(`binding to ${formatAddress(s.local)}`, bb.error(op)));
  if (s.state === TcpState.SYN_SENT) {
    // Held bound, not connected: its SYN leaves at go-live (resumeAll), when the peer may answer.
    b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
    addSynSentOptions(b, steps, s, defaults, fd);
    return;
  }
  const rlen = encodeSockaddr(s.remote, addrBuf.buf);
  steps.set(b.connect(fd, addrBuf.buf, rlen), (bb, op) => targetError(`connecting to ${formatAddress(s.remote)}`, bb.error(op)));

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
  b.setBytes(fd, N.SOL_TCP, N.TCP.REPAIR_OPTIONS, o, n * 8);
  if (s.tcpOptions & TCPI_OPT_TIMESTAMPS) b.setInt(fd, N.SOL_TCP, N.TCP.TIMESTAMP, s.timestamp | 0);

  // The unread data (the receive queue is still selected): taken in without an acknowledgement or a timer.
  if (s.inqLen > 0) addQueueWrite(b, steps, fd, s.recvQueue, 0, s.inqLen, 'receive');
  // Until it goes live, a write by whoever holds the socket must fail (EINVAL), not join a queue.
  b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
  addSynSentOptions(b, steps, s, defaults, fd);
}

function addSynSentOptions(b: N.KernelBatch, steps: Map<number, StepError>, s: SavedConnection, defaults: NetnsDefaults, fd: N.FdArg): void {
  const cong = addUserOptions(b, fd, s, defaults);
  if (cong >= 0) steps.set(cong, (bb, op) => congestionError(s, bb.error(op)));
}

function congestionError(s: SavedConnection, err: N.SyscallError): Error {
  if (err.code !== 'ENOENT') return err;
  return new SoccrError('TARGET_STATE', `restoring socket: congestion control ${s.options.congestion} is not available in the target namespace`, err);
}

/** Adds a queue's bytes, written from the saved Buffer itself. */
function addQueueWrite(b: N.KernelBatch, steps: Map<number, StepError>, fd: N.FdArg, bytes: Buffer, start: number, end: number, what: string): void {
  steps.set(b.sendAll(fd, bytes, start, end, N.MSG_DONTWAIT), (bb, op) => {
    const len = end - start;
    if (bb.errno(op) === 0) return new SoccrError('KERNEL', `${what} queue: no progress writing ${len} bytes`);
    return new N.SyscallError('send', bb.errno(op), `${what} queue at byte ${bb.result(op)} of ${len}`);
  });
}

/**
 * Adds the go-live part of the rebuild to a batch: the sent-but-unacknowledged bytes (retransmitted on
 * timeout), the never-sent tail as ordinary data with repair briefly off (without the window probe; the
 * window is still closed, so it waits), buffer sizes back, the window, the FINs, keepalive. Returns the
 * op that reads the state the FINs led to (half-closed states), or -1.
 */
function addLiveSteps(b: N.KernelBatch, steps: Map<number, StepError>, s: SavedConnection, fd: number, rawFd: number): number {
  const m = bit(s.state);
  const clamp = s.options.windowClamp;
  if (s.state === TcpState.SYN_SENT) {
    // Before the connect at go-live: the SYN's window follows it.
    if (clamp !== 0) b.setInt(fd, N.SOL_TCP, N.TCP.WINDOW_CLAMP, clamp | 0);
    if (s.options.keepAlive) b.setInt(fd, N.SOL_SOCKET, N.SO.KEEPALIVE, 1);
    return -1;
  }
  const device = boundDevice(s);
  const lock = s.options.bufLock;
  const { growSnd, growRcv } = bufferPlan(s);
  const sentLen = s.outqLen - s.unsentLen;
  if (sentLen > 0) {
    b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, SEND_QUEUE);
    addQueueWrite(b, steps, fd, s.sendQueue, 0, sentLen, 'send');
    b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
  }
  if (s.unsentLen > 0) {
    b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR, REPAIR_OFF_NO_PROBE);
    addQueueWrite(b, steps, fd, s.sendQueue, sentLen, s.outqLen, 'unsent');
    b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR, REPAIR_ON);
  }
  if (growSnd && lock & 1) b.setInt(fd, N.SOL_SOCKET, N.SO.SNDBUFFORCE, Math.ceil(s.options.sndBuf / 2));
  if (growRcv && lock & 2) b.setInt(fd, N.SOL_SOCKET, N.SO.RCVBUFFORCE, Math.ceil(s.options.rcvBuf / 2));
  // Setting a size locked it; sizes the kernel was autotuning go back to autotuning.
  if (lock !== BUF_LOCK_BOTH) b.setInt(fd, N.SOL_SOCKET, N.SO.BUF_LOCK, lock);

  // The window last: the kernel checks it against rcv_nxt, which the queue bytes moved. Where the
  // peer's FIN is still to come, rcv_nxt is one short of the saved value.
  if (s.window) {
    const w = windowBuf.buf;
    const finPending = m & RECEIVED_FIN ? 1 : 0;
    w.writeUInt32LE(sndWl1ForRepair(s.window, (s.inqSeq - finPending) >>> 0, finPending), 0);
    w.writeUInt32LE(s.window.sndWnd >>> 0, 4);
    w.writeUInt32LE(s.window.maxWindow >>> 0, 8);
    w.writeUInt32LE((s.window.rcvWnd + finPending) >>> 0, 12);
    w.writeUInt32LE((s.window.rcvWup - finPending) >>> 0, 16);
    b.setBytes(fd, N.SOL_TCP, N.TCP.REPAIR_WINDOW, w, 20);
  }
  // After the window, which it would otherwise bound (and after SO_RCVLOWAT, which can move it).
  if (clamp !== 0) b.setInt(fd, N.SOL_TCP, N.TCP.WINDOW_CLAMP, clamp | 0);

  // Half-closed states: put the FINs back in the order they happened.
  const sndUna = (s.outqSeq - s.outqLen - (m & SENT_FIN ? 1 : 0)) >>> 0;
  const ourFin = (): void => {
    // An acknowledged FIN goes in as already sent (send queue selected); otherwise as new.
    if (m & OUR_FIN_ACKED) b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, SEND_QUEUE);
    steps.set(b.shutdown(fd, N.SHUT_WR), (bb, op) => {
      const err = bb.error(op);
      // The peer's FIN, injected as the saved sequence numbers place it, already closed the socket.
      if (err.code !== 'ENOTCONN') return err;
      return new SoccrError(
        'INVALID_STATE',
        `invalid saved state: the rebuilt socket reached ${stateName(readTcpInfoHead(fd).state)} before its own FIN went back: its sequence numbers do not fit ${stateName(s.state)}`,
        err,
      );
    });
    if (m & OUR_FIN_ACKED) b.setInt(fd, N.SOL_TCP, N.TCP.REPAIR_QUEUE, NO_QUEUE);
  };
  if (m & OUR_FIN_FIRST) ourFin();
  // The raw socket leaves through the connection's interface too (a link-local address needs it).
  if (m & (RECEIVED_FIN | OUR_FIN_ACKED) && device) addBindToDevice(b, steps, rawFd, device);
  if (m & RECEIVED_FIN) {
    b.setInt(rawFd, N.SOL_SOCKET, N.SO.MARK, SOCCR_MARK);
    addInjectFromPeer(b, rawFd, packetBuf, s, (s.inqSeq - 1) >>> 0, sndUna, TH_FIN | TH_ACK);
  }
  if (m & OUR_FIN_SECOND) ourFin();
  if (m & OUR_FIN_ACKED) {
    if (!(m & RECEIVED_FIN)) b.setInt(rawFd, N.SOL_SOCKET, N.SO.MARK, SOCCR_MARK);
    addInjectFromPeer(b, rawFd, ackPacketBuf, s, s.inqSeq, s.outqSeq, TH_ACK);
  }
  // The state the FINs led to, checked once the batch has run.
  const stateCheck = m & (RECEIVED_FIN | OUR_FIN_ACKED) ? b.getBytes(fd, N.SOL_TCP, N.TCP.INFO, 8) : -1;
  // Keepalive last: it arms its timer at once.
  if (s.options.keepAlive) b.setInt(fd, N.SOL_SOCKET, N.SO.KEEPALIVE, 1);
  return stateCheck;
}
/**
 * snd_wl1 as TCP_REPAIR_WINDOW accepts it: at most rcv_nxt + rcv_wnd. A real socket can be beyond that:
 * under memory pressure the kernel takes a segment's ACK (snd_wl1 = its seq) and then drops its data.
 * snd_wl1 only decides whether the peer's next segment may update the send window; rcv_nxt, older,
 * just lets it do so, which is harmless.
 */
function sndWl1ForRepair(w: RepairWindow, rcvNxt: number, finPending: number): number {
  return after(w.sndWl1 >>> 0, (rcvNxt + w.rcvWnd + finPending) >>> 0) ? rcvNxt : w.sndWl1 >>> 0;
}

/**
 * Makes a restored socket live: its go-live steps (finishRestoredAll) if they did not run yet, repair off
 * (with a window probe), then the user's SO_REUSEADDR.
 */
export function resumeRestored(sock: RestoredSocket): void {
  resume(sock);
}
