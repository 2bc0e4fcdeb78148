// The native layer: every libc call soccrd makes goes through here, and this is the only module that
// imports ffi-rs. Each ffi-rs call costs microseconds, so the hot paths pass raw addresses of
// long-lived Buffers (ffi-rs converts a plain number argument far faster than a Buffer) and read
// errno from a view of glibc's thread-local errno only after a call has reported failure. Hot paths
// go further: a KernelBatch holds many kernel calls and runs them in one FFI call through the small C
// library native/soccr_batch.c (built at install), or one FFI call each where that library is missing.
import { constants as osConstants } from 'node:os';
import { closeSync, constants as osFsConstants, existsSync, fstatSync, openSync } from 'node:fs';
import * as path from 'node:path';
import { DataType, createExternalBuffer, load, open } from 'ffi-rs';
import { SyscallError, errorMessage } from '../../protocol/errors';

const LIBC = 'libc';
open({ library: LIBC, path: '' });

export { SyscallError };

// ---- call plumbing -----------------------------------------------------------------------------

/** Argument kinds: 32-bit integers, and 64-bit integers which also carry addresses. */
const I32 = DataType.I32;
const I64 = DataType.I64;

interface CallSpec {
  library: string;
  funcName: string;
  retType: DataType;
  paramsType: DataType[];
  paramsValue: number[];
  freeResultMemory: boolean;
}

let callCount = 0;
let kernelCallCount = 0;

/** Number of FFI calls made so far by this process (for per-operation accounting). */
export function ffiCalls(): number {
  return callCount;
}

/** Number of kernel calls made so far through batches (each op of a KernelBatch counts one). */
export function batchedKernelCalls(): number {
  return kernelCallCount;
}

function spec(funcName: string, paramsType: DataType[], retType: DataType = I32): CallSpec {
  return { library: LIBC, funcName, retType, paramsType, paramsValue: [], freeResultMemory: false };
}

// One spec object per function, reused by every call: building a fresh object costs more than the
// call's own conversion work.
function invoke(s: CallSpec, args: number[]): number {
  s.paramsValue = args;
  callCount++;
  return load(s as Parameters<typeof load>[0]) as unknown as number;
}

const addressSpec = spec('memcpy', [DataType.U8Array, DataType.U8Array, I64], I64);
/** The address of a Buffer's memory; Buffers never move, so it stays valid while `buf` lives. */
export function addressOf(buf: Buffer): number {
  if (buf.length === 0) throw new RangeError('addressOf: empty buffer');
  const s = addressSpec as unknown as { paramsValue: unknown[] };
  s.paramsValue = [buf, buf, 0];
  callCount++;
  return load(addressSpec as unknown as Parameters<typeof load>[0]) as unknown as number;
}

/** A Buffer with its own backing store (never a slice of Node's shared pool) and its address. */
export interface PinnedBuffer {
  buf: Buffer;
  addr: number;
}
export function pinned(size: number): PinnedBuffer {
  const buf = Buffer.alloc(Math.max(size, 1));
  return { buf, addr: remember(buf) };
}

/** Learns `buf`'s address (one FFI call) and records it for every view of its memory. */
function remember(buf: Buffer): number {
  const addr = addressOf(buf);
  knownAddresses.set(buf.buffer, addr - buf.byteOffset);
  return addr;
}

// The memory of every pinned buffer by its ArrayBuffer: any view of it has a known address, and a
// batch can hand it to the kernel as it is (no copy, no FFI call to learn where it is).
const knownAddresses = new WeakMap<ArrayBufferLike, number>();

/** The address of `buf`'s first byte if it is a view of pinned memory, else undefined. */
function knownAddress(buf: Buffer): number | undefined {
  const base = knownAddresses.get(buf.buffer);
  return base === undefined ? undefined : base + buf.byteOffset;
}

// Small pinned buffers are cut from slabs (as Node cuts small Buffers from its pool): one FFI call per
// slab for its address instead of one per buffer. A slab lives while any buffer cut from it does.
const SLAB_SIZE = 256 * 1024;
let slab: Buffer | undefined;
let slabUsed = 0;

/**
 * A Buffer of `size` bytes with a known address (knownAddress), not zero-filled: for kernel calls that
 * fill it, such as a queue peek, whose bytes are then used as they are.
 */
export function allocPinned(size: number): Buffer {
  if (size > SLAB_SIZE / 4) {
    const own = Buffer.allocUnsafeSlow(size);
    remember(own);
    return own;
  }
  if (!slab || slabUsed + size > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    remember(slab);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + size);
  slabUsed += (size + 7) & ~7;
  return out;
}

// glibc's errno for this thread. All calls run on the main JS thread, so the address is stable.
const errnoView: Buffer = createExternalBuffer(
  load({ library: LIBC, funcName: '__errno_location', retType: DataType.External, paramsType: [], paramsValue: [] }),
  4,
);
function lastErrno(): number {
  return errnoView.readInt32LE(0);
}

function check(ret: number, call: string, context?: string): number {
  if (ret < 0) throw new SyscallError(call, lastErrno(), context);
  return ret;
}

// Scratch memory for small out-parameters on the hot paths.
const scratch = pinned(512);
const LEN_OFF = 504; // a socklen_t slot at the end of scratch
const VAL_OFF = 0;

// ---- constants ---------------------------------------------------------------------------------

export const AF_UNIX = 1;
export { AF_INET, AF_INET6 } from '../../protocol/address';
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const IPPROTO_TCP = 6;
export const IPPROTO_RAW = 255;
/** Multipath TCP (what SO_PROTOCOL reports for a socket made with it) */
export const IPPROTO_MPTCP = 262;
export const SOL_SOCKET = 1;
export const SOL_IP = 0;
export const SOL_IPV6 = 41;
export const SOL_TCP = 6;
export const MSG_PEEK = 0x2;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const O_NONBLOCK = 0o4000;
export const FD_CLOEXEC = 1;
export const CLONE_NEWNET = 0x40000000;
export const F_DUPFD_CLOEXEC = 1030;
/** open(2) flags of this platform (node's own names where it has them; O_PATH and O_CLOEXEC it lacks). */
export const O_RDONLY = osFsConstants.O_RDONLY;
export const O_NOFOLLOW = osFsConstants.O_NOFOLLOW;
export const O_DIRECTORY = osFsConstants.O_DIRECTORY;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
/** openat's "relative to the working directory": only ever used with absolute paths here. */
export const AT_FDCWD = -100;
/** ioctl on an nsfs file: the CLONE_NEW* type of the namespace (linux/nsfs.h, _IO(0xb7, 0x3)). */
export const NS_GET_NSTYPE = 0xb703;
/** ioctl on a pidfd: a descriptor of the process's network namespace (linux/pidfd.h, _IO(0xff, 4); Linux 6.11+). */
export const PIDFD_GET_NET_NAMESPACE = 0xff04;
/** st_mode's file type bits. */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFDIR = 0o040000;
export const S_IFIFO = 0o010000;

export const SO = {
  REUSEADDR: 2,
  TYPE: 3,
  ERROR: 4,
  SNDBUF: 7,
  RCVBUF: 8,
  KEEPALIVE: 9,
  PROTOCOL: 38,
  DOMAIN: 39,
  SNDBUFFORCE: 32,
  RCVBUFFORCE: 33,
  MARK: 36,
  ACCEPTCONN: 30,
  PEERNAME: 28,
  PEERCRED: 17,
  PEERGROUPS: 59,
  PEEK_OFF: 42,
  BUF_LOCK: 72,
  PRIORITY: 12,
  LINGER: 13,
  REUSEPORT: 15,
  RCVLOWAT: 18,
  /** struct timeval (the _OLD names: 16 bytes on 64-bit platforms, as the _NEW ones) */
  RCVTIMEO: 20,
  SNDTIMEO: 21,
  BINDTODEVICE: 25,
} as const;

export const TCP = {
  NODELAY: 1,
  MAXSEG: 2,
  CORK: 3,
  KEEPIDLE: 4,
  KEEPINTVL: 5,
  KEEPCNT: 6,
  INFO: 11,
  CONGESTION: 13,
  USER_TIMEOUT: 18,
  REPAIR: 19,
  REPAIR_QUEUE: 20,
  QUEUE_SEQ: 21,
  REPAIR_OPTIONS: 22,
  TIMESTAMP: 24,
  REPAIR_WINDOW: 29,
  ULP: 31,
  MD5SIG: 14,
  AO_INFO: 40,
  WINDOW_CLAMP: 10,
  NOTSENT_LOWAT: 25,
} as const;

export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_FREEBIND = 15;
export const IP_TRANSPARENT = 19;
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_V6ONLY = 26;
export const IPV6_TCLASS = 67;
/** IFNAMSIZ: an interface name and its NUL. */
export const IFNAMSIZ = 16;
export const IPV6_TRANSPARENT = 75;

export const SIOCINQ = 0x541b;
export const SIOCOUTQ = 0x5411;
export const SIOCOUTQNSD = 0x894b;

// ---- bindings ----------------------------------------------------------------------------------

const fns = {
  socket: spec('socket', [I32, I32, I32]),
  bind: spec('bind', [I32, I64, I32]),
  connect: spec('connect', [I32, I64, I32]),
  listen: spec('listen', [I32, I32]),
  accept4: spec('accept4', [I32, I64, I64, I32]),
  close: spec('close', [I32]),
  setsockopt: spec('setsockopt', [I32, I32, I32, I64, I32]),
  getsockopt: spec('getsockopt', [I32, I32, I32, I64, I64]),
  ioctl: spec('ioctl', [I32, I64, I64]),
  recv: spec('recv', [I32, I64, I64, I32], I64),
  send: spec('send', [I32, I64, I64, I32], I64),
  sendto: spec('sendto', [I32, I64, I64, I32, I64, I32], I64),
  sendmsg: spec('sendmsg', [I32, I64, I32], I64),
  recvmsg: spec('recvmsg', [I32, I64, I32], I64),
  shutdown: spec('shutdown', [I32, I32]),
  getsockname: spec('getsockname', [I32, I64, I64]),
  getpeername: spec('getpeername', [I32, I64, I64]),
  fcntl: spec('fcntl', [I32, I32, I64]),
  setns: spec('setns', [I32, I32]),
  pidfd_open: spec('pidfd_open', [I32, I32]),
  pidfd_getfd: spec('pidfd_getfd', [I32, I32, I32]),
  pidfd_send_signal: spec('pidfd_send_signal', [I32, I32, I64, I32]),
  getpid: spec('getpid', []),
  memfd_create: spec('memfd_create', [I64, I32]),
  pthread_sigmask: spec('pthread_sigmask', [I32, I64, I64]),
  openat: spec('openat', [I32, I64, I32, I32]),
  fstat: spec('fstat', [I32, I64]),
  // kcmp has no libc wrapper: syscall(2) with integer arguments only
  syscall5: spec('syscall', [I64, I64, I64, I64, I64, I64], I64),
  poll: spec('poll', [I64, I64, I32]),
};

const SYS_KCMP = process.arch === 'x64' ? 312 : 272; // x86_64; the generic table (arm64, riscv64)
const KCMP_FILE = 0;

export function socket(domain: number, type: number, protocol: number): number {
  return check(invoke(fns.socket, [domain, type, protocol]), 'socket');
}

export function bind(fd: number, addr: PinnedBuffer, addrLen: number): void {
  check(invoke(fns.bind, [fd, addr.addr, addrLen]), 'bind');
}

export function connect(fd: number, addr: PinnedBuffer, addrLen: number): void {
  check(invoke(fns.connect, [fd, addr.addr, addrLen]), 'connect');
}

export function listen(fd: number, backlog: number): void {
  check(invoke(fns.listen, [fd, backlog]), 'listen');
}

/** accept4 without the peer address. */
export function accept(fd: number, flags = SOCK_CLOEXEC): number {
  return check(invoke(fns.accept4, [fd, 0, 0, flags]), 'accept4');
}

export function close(fd: number): void {
  check(invoke(fns.close, [fd]), 'close');
}

/** close() that reports failure by its return value: for cleanup paths that must not throw. */
export function closeQuietly(fd: number): boolean {
  return invoke(fns.close, [fd]) === 0;
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  scratch.buf.writeInt32LE(value, VAL_OFF);
  check(invoke(fns.setsockopt, [fd, level, name, scratch.addr + VAL_OFF, 4]), 'setsockopt', `${level}/${name}`);
}

/** setsockopt with an arbitrary value; `value` must be a pinned buffer. */
export function setsockoptBytes(fd: number, level: number, name: number, value: PinnedBuffer, len: number): void {
  check(invoke(fns.setsockopt, [fd, level, name, value.addr, len]), 'setsockopt', `${level}/${name}`);
}

/** poll(2) revents bit: an error is pending on the socket (reported whatever was asked). */
export const POLLERR = 0x8;

/**
 * The events pending on `fd` now (poll with no wait). Unlike SO_ERROR, it leaves a pending error in
 * place for the socket's owner.
 */
export function pollNow(fd: number, events = 0): number {
  scratch.buf.writeInt32LE(fd, VAL_OFF);
  scratch.buf.writeInt16LE(events, VAL_OFF + 4);
  scratch.buf.writeInt16LE(0, VAL_OFF + 6);
  check(invoke(fns.poll, [scratch.addr + VAL_OFF, 1, 0]), 'poll');
  return scratch.buf.readInt16LE(VAL_OFF + 6);
}

export function getsockoptInt(fd: number, level: number, name: number): number {
  scratch.buf.writeUInt32LE(4, LEN_OFF);
  check(invoke(fns.getsockopt, [fd, level, name, scratch.addr + VAL_OFF, scratch.addr + LEN_OFF]), 'getsockopt', `${level}/${name}`);
  return scratch.buf.readInt32LE(VAL_OFF);
}

/**
 * getsockopt into `out` (at most `len` bytes); returns the length the kernel wrote. The bytes are in
 * out.buf until the next call that uses the same buffer.
 */
export function getsockoptBytes(fd: number, level: number, name: number, out: PinnedBuffer, len: number): number {
  scratch.buf.writeUInt32LE(len, LEN_OFF);
  check(invoke(fns.getsockopt, [fd, level, name, out.addr, scratch.addr + LEN_OFF]), 'getsockopt', `${level}/${name}`);
  return scratch.buf.readUInt32LE(LEN_OFF);
}

/** getsockopt returning the number or the errno (no throw): for options a kernel may not have. */
export function tryGetsockoptBytes(fd: number, level: number, name: number, out: PinnedBuffer, len: number): number {
  scratch.buf.writeUInt32LE(len, LEN_OFF);
  const r = invoke(fns.getsockopt, [fd, level, name, out.addr, scratch.addr + LEN_OFF]);
  return r < 0 ? -lastErrno() : scratch.buf.readUInt32LE(LEN_OFF);
}

/** An ioctl whose result is an int (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD). */
export function ioctlInt(fd: number, request: number): number {
  check(invoke(fns.ioctl, [fd, request, scratch.addr + VAL_OFF]), 'ioctl', `0x${request.toString(16)}`);
  return scratch.buf.readInt32LE(VAL_OFF);
}

/** recv into out.buf at `offset`; returns the byte count. */
export function recv(fd: number, out: PinnedBuffer, offset: number, len: number, flags: number): number {
  return check(invoke(fns.recv, [fd, out.addr + offset, len, flags]), 'recv');
}

/** recv that returns -errno instead of throwing (EAGAIN is routine on non-blocking sockets). */
export function tryRecv(fd: number, out: PinnedBuffer, offset: number, len: number, flags: number): number {
  const r = invoke(fns.recv, [fd, out.addr + offset, len, flags]);
  return r < 0 ? -lastErrno() : r;
}

/** send from src.buf at `offset`; returns the byte count. */
export function send(fd: number, src: PinnedBuffer, offset: number, len: number, flags: number): number {
  return check(invoke(fns.send, [fd, src.addr + offset, len, flags | MSG_NOSIGNAL]), 'send');
}

/** send that returns -errno instead of throwing. */
export function trySend(fd: number, src: PinnedBuffer, offset: number, len: number, flags: number): number {
  const r = invoke(fns.send, [fd, src.addr + offset, len, flags | MSG_NOSIGNAL]);
  return r < 0 ? -lastErrno() : r;
}

/** sendto that returns -errno instead of throwing: `dest` a sockaddr (e.g. from unixSockaddr). */
export function trySendTo(fd: number, data: PinnedBuffer, len: number, dest: PinnedBuffer, destLen: number, flags = 0): number {
  const r = invoke(fns.sendto, [fd, data.addr, len, flags | MSG_NOSIGNAL, dest.addr, destLen]);
  return r < 0 ? -lastErrno() : r;
}

/** sendto on a raw socket: `packet` is a whole IP datagram, `dest` a sockaddr. */
export function sendRaw(fd: number, packet: PinnedBuffer, len: number, dest: PinnedBuffer, destLen: number): number {
  return check(invoke(fns.sendto, [fd, packet.addr, len, 0, dest.addr, destLen]), 'sendto');
}

export function shutdown(fd: number, how: number): void {
  check(invoke(fns.shutdown, [fd, how]), 'shutdown');
}

/** getsockname into `out` (a sockaddr_storage-sized pinned buffer); returns the address length. */
export function getsockname(fd: number, out: PinnedBuffer): number {
  scratch.buf.writeUInt32LE(out.buf.length, LEN_OFF);
  check(invoke(fns.getsockname, [fd, out.addr, scratch.addr + LEN_OFF]), 'getsockname');
  return scratch.buf.readUInt32LE(LEN_OFF);
}

export function getpeername(fd: number, out: PinnedBuffer): number {
  scratch.buf.writeUInt32LE(out.buf.length, LEN_OFF);
  check(invoke(fns.getpeername, [fd, out.addr, scratch.addr + LEN_OFF]), 'getpeername');
  return scratch.buf.readUInt32LE(LEN_OFF);
}

export function fcntl(fd: number, cmd: number, arg = 0): number {
  return check(invoke(fns.fcntl, [fd, cmd, arg]), 'fcntl');
}

export function setns(fd: number, nstype: number): void {
  check(invoke(fns.setns, [fd, nstype]), 'setns');
}

export function pidfdOpen(pid: number): number {
  return check(invoke(fns.pidfd_open, [pid, 0]), 'pidfd_open', `pid ${pid}`);
}

export function pidfdGetfd(pidfd: number, targetFd: number): number {
  return check(invoke(fns.pidfd_getfd, [pidfd, targetFd, 0]), 'pidfd_getfd', `fd ${targetFd}`);
}

/** Sends a signal to the process behind a pidfd (no pid-reuse race). */
export function pidfdSendSignal(pidfd: number, sig: number): void {
  check(invoke(fns.pidfd_send_signal, [pidfd, sig, 0, 0]), 'pidfd_send_signal', `signal ${sig}`);
}

export const MFD_CLOEXEC = 1;

/** An anonymous memory file whose fd links to `/memfd:NAME (deleted)` in /proc/PID/fd. */
export function memfdCreate(name: string, flags = MFD_CLOEXEC): number {
  const n = pinned(Buffer.byteLength(name) + 1);
  n.buf.write(name, 'utf8');
  return check(invoke(fns.memfd_create, [n.addr, flags]), 'memfd_create', name);
}

export function getpid(): number {
  return invoke(fns.getpid, []);
}

// A path for openat: NUL-terminated bytes in pinned memory (paths are at most PATH_MAX).
const pathBuf = pinned(4097);

/**
 * openat(2) (`dirFd` AT_FDCWD for an absolute path). Throws SyscallError (ENOENT, ELOOP for a symbolic
 * link under O_NOFOLLOW, ...). The path must not contain NUL.
 */
export function openat(dirFd: number, path: string, flags: number, mode = 0): number {
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length >= pathBuf.buf.length || bytes.includes(0)) throw new SyscallError('openat', osConstants.errno.ENAMETOOLONG, path);
  bytes.copy(pathBuf.buf);
  pathBuf.buf[bytes.length] = 0;
  return check(invoke(fns.openat, [dirFd, pathBuf.addr, flags, mode]), 'openat', path);
}

/** What fstat says of an open file: its identity (device, inode) and type/permission bits. */
export interface FileIdentity {
  dev: number;
  ino: number;
  mode: number;
  uid: number;
}

// struct stat: st_dev and st_ino lead on every 64-bit Linux ABI; st_mode and st_uid follow st_nlink,
// which is 8 bytes wide on x86_64 and 4 bytes (after st_mode) on the generic ABI (arm64, riscv64).
const statBuf = pinned(256);
const STAT_MODE_OFF = process.arch === 'x64' ? 24 : 16;
const STAT_UID_OFF = process.arch === 'x64' ? 28 : 24;

export function fstat(fd: number): FileIdentity {
  check(invoke(fns.fstat, [fd, statBuf.addr]), 'fstat');
  const b = statBuf.buf;
  return { dev: Number(b.readBigUInt64LE(0)), ino: Number(b.readBigUInt64LE(8)), mode: b.readUInt32LE(STAT_MODE_OFF), uid: b.readUInt32LE(STAT_UID_OFF) };
}

/** An ioctl that takes no argument and returns an int (or a new fd); throws SyscallError. */
export function ioctlNoArg(fd: number, request: number): number {
  return check(invoke(fns.ioctl, [fd, request, 0]), 'ioctl', `0x${request.toString(16)}`);
}

// ---- batches: many kernel calls in one FFI call ------------------------------------------------

// Op codes, flags and record layout shared with native/soccr_batch.c.
const OP = {
  SETSOCKOPT: 1,
  GETSOCKOPT: 2,
  IOCTL: 3,
  RECV: 4,
  SEND: 5,
  SOCKET: 6,
  BIND: 7,
  CONNECT: 8,
  SHUTDOWN: 9,
  SENDTO: 10,
  CLOSE: 11,
  GETSOCKNAME: 12,
  SETNS: 13,
  PIDFD_GETFD: 14,
  FSTAT_INO: 15,
  KCMP_FILE: 16,
} as const;
const OP_NAMES = [
  '',
  'setsockopt',
  'getsockopt',
  'ioctl',
  'recv',
  'send',
  'socket',
  'bind',
  'connect',
  'shutdown',
  'sendto',
  'close',
  'getsockname',
  'setns',
  'pidfd_getfd',
  'fstat',
  'kcmp',
];

/** Op flags. */
export const ALWAYS = 1; // runs even when its group stopped earlier (cleanup)
export const NOSTOP = 2; // a failure is recorded but does not stop the group
const SEND_ALL = 4;

const ST_OK = 1;
const ST_FAILED = 2;
const ST_SKIPPED = 3;
const BASE_INLINE = -1;
const BASE_ABSOLUTE = 0;

const REC = 128; // bytes per record; the batch's first record is its header (the op count)
const W = REC / 4; // int32 words per record
/** Word (int32) offsets of a record's fields. */
const F = {
  CODE: 0,
  FD: 1,
  A1: 2,
  A2: 3,
  A3: 4,
  LEN: 5,
  ADDR: 6, // u64: words 6, 7
  BASE: 8,
  EXPECT: 9,
  GROUP: 10,
  FLAGS: 11,
  FD_FROM: 12,
  STATUS: 13,
  RESULT: 14, // i64: words 14, 15
  ERR: 16,
  OUT_LEN: 17,
} as const;
const DATA_OFF = 72; // bytes: inline memory for small values
const INLINE_BYTES = 56;
const ABI = 2;

/** Where an op's fd comes from: a number, or the result of an earlier op of the same batch (a new socket). */
export type FdArg = number | { op: number };

const BATCH_LIB = 'soccr_batch';
const BATCH_LIB_PATH = path.resolve(__dirname, '..', '..', '..', 'build', 'libsoccr_batch.so');

function loadBatchLibrary(): { loaded: boolean; reason: string } {
  if (process.env.SOCCRD_NATIVE_BATCH === '0') return { loaded: false, reason: 'SOCCRD_NATIVE_BATCH=0' };
  if (!existsSync(BATCH_LIB_PATH)) return { loaded: false, reason: `${BATCH_LIB_PATH} missing (no C compiler at npm install?)` };
  try {
    open({ library: BATCH_LIB, path: BATCH_LIB_PATH });
    const abi = load({ library: BATCH_LIB, funcName: 'soccr_batch_abi', retType: I32, paramsType: [], paramsValue: [] });
    if (abi !== ABI) return { loaded: false, reason: `${BATCH_LIB_PATH} is of another version (ABI ${abi}, want ${ABI}): run npm install` };
    return { loaded: true, reason: BATCH_LIB_PATH };
  } catch (err) {
    return { loaded: false, reason: `${BATCH_LIB_PATH}: ${errorMessage(err)}` };
  }
}

const batchLibrary = loadBatchLibrary();
let batchEnabled = batchLibrary.loaded;

/**
 * Which path batches take: `native` (one FFI call per batch, native/soccr_batch.c) or the per-call
 * fallback (one FFI call per kernel call), and why.
 */
export function batchPath(): { native: boolean; reason: string } {
  if (batchEnabled) return { native: true, reason: `batch library ${batchLibrary.reason}` };
  return { native: false, reason: `one FFI call per kernel call: ${batchLibrary.loaded ? 'batch library switched off' : batchLibrary.reason}` };
}

/** Switches between the two paths (tests run both); native only where the library loaded. Returns the path in use. */
export function useNativeBatch(on: boolean): boolean {
  batchEnabled = on && batchLibrary.loaded;
  return batchEnabled;
}

const runSpec = { library: BATCH_LIB, funcName: 'soccr_batch_run', retType: I32, paramsType: [I64], paramsValue: [0] as unknown[], freeResultMemory: false };
const runWithSpec = {
  library: BATCH_LIB,
  funcName: 'soccr_batch_run_with',
  retType: I32,
  paramsType: [I64, DataType.U8Array, DataType.U8Array],
  paramsValue: [0] as unknown[],
  freeResultMemory: false,
};
// The fallback's calls on memory it has no address for (a big queue handed in as a Buffer).
const recvU8 = spec('recv', [I32, DataType.U8Array, I64, I32], I64);
const sendU8 = spec('send', [I32, DataType.U8Array, I64, I32], I64);
const ONE_BYTE = Buffer.alloc(1);
// Bytes without a known address up to this size are copied into the batch's own pinned memory: a
// Buffer argument costs ffi-rs about as much as copying 30-40 KiB (measured on this machine).
const STAGE_LIMIT = 32 * 1024;
const STAGE_SIZE = 64 * 1024;

/**
 * Kernel calls prepared in order and run together: in one FFI call through native/soccr_batch.c, or
 * (without that library, or with SOCCRD_NATIVE_BATCH=0) one FFI call each, with the same semantics.
 * Each op belongs to a group (`group`, set before adding ops; a group's ops are contiguous): when an op
 * fails, the rest of its group is skipped except ALWAYS ops; NOSTOP ops fail without stopping it. After
 * `run`, each op's outcome is read by its index: ok, result, errno, the int or bytes it read.
 */
export class KernelBatch {
  private mem: PinnedBuffer;
  private words: Int32Array;
  private count = 0;
  private stage: PinnedBuffer | undefined;
  private staged = 0;
  private args: Buffer[] = [];
  /** The group of the ops added next. */
  group = 0;

  constructor(capacity = 64) {
    this.mem = pinned(REC * (capacity + 1));
    this.words = new Int32Array(this.mem.buf.buffer, this.mem.buf.byteOffset, this.mem.buf.length / 4);
  }

  get length(): number {
    return this.count;
  }

  /** Empties the batch for new ops (outcomes of the last run are gone). */
  reset(): this {
    this.count = 0;
    this.staged = 0;
    this.args = [];
    this.group = 0;
    return this;
  }

  private add(code: number, fd: FdArg, a1: number, a2: number, a3: number, flags: number): number {
    if ((this.count + 2) * REC > this.mem.buf.length) this.grow();
    const i = this.count++;
    const w = this.words;
    const o = (i + 1) * W;
    w[o + F.CODE] = code;
    if (typeof fd === 'number') {
      w[o + F.FD] = fd;
      w[o + F.FD_FROM] = -1;
    } else {
      w[o + F.FD] = -1;
      w[o + F.FD_FROM] = fd.op;
    }
    w[o + F.A1] = a1;
    w[o + F.A2] = a2;
    w[o + F.A3] = a3;
    w[o + F.LEN] = 0;
    w[o + F.ADDR] = 0;
    w[o + F.ADDR + 1] = 0;
    w[o + F.BASE] = BASE_INLINE;
    w[o + F.EXPECT] = -1;
    w[o + F.GROUP] = this.group;
    w[o + F.FLAGS] = flags;
    w[o + F.STATUS] = 0;
    return i;
  }

  private grow(): void {
    const old = this.mem.buf;
    this.mem = pinned(old.length * 2);
    old.copy(this.mem.buf);
    this.words = new Int32Array(this.mem.buf.buffer, this.mem.buf.byteOffset, this.mem.buf.length / 4);
  }

  private word(i: number, field: number): number {
    return this.words[(i + 1) * W + field];
  }

  private dataOff(i: number): number {
    return (i + 1) * REC + DATA_OFF;
  }

  /** Points op i at `len` bytes of its inline memory. */
  private inline(i: number, len: number): number {
    if (len > INLINE_BYTES) throw new RangeError(`${len} bytes do not fit an op's inline memory`);
    this.words[(i + 1) * W + F.LEN] = len;
    return i;
  }

  /** Points op i at `len` bytes from `buf[start]`: by address when known, copied when small, else as a call argument. */
  private memory(i: number, buf: Buffer, start: number, len: number, copyIn: boolean): void {
    const o = (i + 1) * W;
    this.words[o + F.LEN] = len;
    let addr = knownAddress(buf);
    if (addr === undefined && copyIn && len <= STAGE_LIMIT) {
      this.stage ??= pinned(STAGE_SIZE);
      if (this.staged + len <= STAGE_SIZE) {
        buf.copy(this.stage.buf, this.staged, start, start + len);
        addr = this.stage.addr + this.staged - start;
        this.staged += (len + 7) & ~7;
      }
    }
    if (addr !== undefined) {
      this.setAddr(o, addr + start);
      this.words[o + F.BASE] = BASE_ABSOLUTE;
      return;
    }
    let slot = this.args.indexOf(buf);
    if (slot < 0) {
      if (this.args.length >= 2) throw new RangeError('a batch takes at most two buffers without a known address');
      slot = this.args.push(buf) - 1;
    }
    this.setAddr(o, start);
    this.words[o + F.BASE] = slot + 1;
  }

  private setAddr(o: number, addr: number): void {
    this.words[o + F.ADDR] = (addr % 0x100000000) | 0;
    this.words[o + F.ADDR + 1] = Math.floor(addr / 0x100000000);
  }

  setInt(fd: FdArg, level: number, name: number, value: number, flags = 0): number {
    const i = this.inline(this.add(OP.SETSOCKOPT, fd, level, name, 0, flags), 4);
    this.mem.buf.writeInt32LE(value | 0, this.dataOff(i));
    return i;
  }

  /** setsockopt with up to INLINE_BYTES bytes of value. */
  setBytes(fd: FdArg, level: number, name: number, value: Buffer, len = value.length, flags = 0): number {
    const i = this.inline(this.add(OP.SETSOCKOPT, fd, level, name, 0, flags), len);
    value.copy(this.mem.buf, this.dataOff(i), 0, len);
    return i;
  }

  getInt(fd: FdArg, level: number, name: number, flags = 0): number {
    return this.inline(this.add(OP.GETSOCKOPT, fd, level, name, 0, flags), 4);
  }

  /** getsockopt of up to INLINE_BYTES bytes: read them with bytes(i) (outLen(i) long). */
  getBytes(fd: FdArg, level: number, name: number, len: number, flags = 0): number {
    return this.inline(this.add(OP.GETSOCKOPT, fd, level, name, 0, flags), len);
  }

  /** An ioctl whose result is an int (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD): read it with int(i). */
  ioctlInt(fd: FdArg, request: number, flags = 0): number {
    return this.inline(this.add(OP.IOCTL, fd, request, 0, 0, flags), 4);
  }

  /** recv into `into[start..start+len)`; with `expect`, any other byte count is a failure. */
  recv(fd: FdArg, into: Buffer, start: number, len: number, recvFlags: number, expect = -1, flags = 0): number {
    const i = this.add(OP.RECV, fd, recvFlags, 0, 0, flags);
    this.memory(i, into, start, len, false);
    this.words[(i + 1) * W + F.EXPECT] = expect;
    return i;
  }

  /**
   * Sends every byte of `src[start..end)`: the kernel may take less than asked or refuse a chunk it
   * cannot allocate at once, so it goes on, halving the chunk on refusal. result(i) is the bytes sent.
   */
  sendAll(fd: FdArg, src: Buffer, start: number, end: number, sendFlags: number, flags = 0): number {
    const i = this.add(OP.SEND, fd, sendFlags | MSG_NOSIGNAL, 0, 0, flags | SEND_ALL);
    this.memory(i, src, start, end - start, true);
    return i;
  }

  socket(domain: number, type: number, protocol: number, flags = 0): number {
    return this.add(OP.SOCKET, -1, domain, type, protocol, flags);
  }

  bind(fd: FdArg, addr: Buffer, len: number, flags = 0): number {
    return this.sockaddrOp(OP.BIND, fd, addr, len, flags);
  }

  connect(fd: FdArg, addr: Buffer, len: number, flags = 0): number {
    return this.sockaddrOp(OP.CONNECT, fd, addr, len, flags);
  }

  private sockaddrOp(code: number, fd: FdArg, addr: Buffer, len: number, flags: number): number {
    const i = this.inline(this.add(code, fd, 0, 0, 0, flags), len);
    addr.copy(this.mem.buf, this.dataOff(i), 0, len);
    return i;
  }

  shutdown(fd: FdArg, how: number, flags = 0): number {
    return this.add(OP.SHUTDOWN, fd, how, 0, 0, flags);
  }

  /** sendto of `packet` (pinned) to the sockaddr `dest` (its first destLen bytes). */
  sendTo(fd: FdArg, packet: PinnedBuffer, len: number, dest: Buffer, destLen: number, sendFlags = 0, flags = 0): number {
    const i = this.add(OP.SENDTO, fd, sendFlags, destLen, 0, flags);
    const o = (i + 1) * W;
    this.words[o + F.LEN] = len;
    this.setAddr(o, packet.addr);
    this.words[o + F.BASE] = BASE_ABSOLUTE;
    dest.copy(this.mem.buf, this.dataOff(i), 0, destLen);
    return i;
  }

  close(fd: FdArg, flags = 0): number {
    return this.add(OP.CLOSE, fd, 0, 0, 0, flags);
  }

  /** getsockname of up to INLINE_BYTES bytes (a sockaddr_in6 is 28): bytes(i) */
  getsockname(fd: FdArg, len: number, flags = 0): number {
    return this.inline(this.add(OP.GETSOCKNAME, fd, 0, 0, 0, flags), len);
  }

  setns(nsFd: number, nstype: number, flags = 0): number {
    return this.add(OP.SETNS, nsFd, nstype, 0, 0, flags);
  }

  pidfdGetfd(pidfd: number, targetFd: number, flags = 0): number {
    return this.add(OP.PIDFD_GETFD, pidfd, targetFd, 0, 0, flags);
  }

  /** fstat's st_ino of an fd (which socket a duplicate is): read it with inode(i). */
  fstatIno(fd: FdArg, flags = 0): number {
    return this.inline(this.add(OP.FSTAT_INO, fd, 0, 0, 0, flags), 8);
  }

  /**
   * Whether our `fd` and `theirFd` of process `pid` name the same open file (kcmp KCMP_FILE): the op
   * succeeds only then; a different file fails with errno 0, a closed one with EBADF.
   */
  kcmpFile(fd: number, pid: number, theirFd: number, flags = 0): number {
    const i = this.add(OP.KCMP_FILE, fd, pid, theirFd, process.pid, flags);
    this.words[(i + 1) * W + F.EXPECT] = 0;
    return i;
  }

  /** Runs every op; returns how many failed (skipped ones not counted). */
  run(): number {
    const n = this.count;
    if (n === 0) return 0;
    this.words[0] = n;
    kernelCallCount += n;
    if (!batchEnabled) return this.runEach();
    callCount++;
    if (this.args.length === 0) {
      runSpec.paramsValue = [this.mem.addr];
      return load(runSpec as unknown as Parameters<typeof load>[0]) as unknown as number;
    }
    runWithSpec.paramsValue = [this.mem.addr, this.args[0], this.args[1] ?? ONE_BYTE];
    return load(runWithSpec as unknown as Parameters<typeof load>[0]) as unknown as number;
  }

  /** The fallback: each op as its own FFI call, with the library's semantics. */
  private runEach(): number {
    const w = this.words;
    let failed = 0;
    let stopped: number | undefined;
    for (let i = 0; i < this.count; i++) {
      const o = (i + 1) * W;
      if (stopped !== undefined && w[o + F.GROUP] !== stopped) stopped = undefined;
      w[o + F.ERR] = 0;
      w[o + F.OUT_LEN] = 0;
      const flags = w[o + F.FLAGS];
      if (stopped !== undefined && !(flags & ALWAYS)) {
        w[o + F.STATUS] = ST_SKIPPED;
        this.setResult(o, -1);
        continue;
      }
      let fd = w[o + F.FD];
      const from = w[o + F.FD_FROM];
      let r: number;
      let err: number;
      if (from >= 0 && (from >= i || this.word(from, F.STATUS) !== ST_OK)) {
        r = -1;
        err = osConstants.errno.EBADF;
        this.setResult(o, -1);
      } else {
        if (from >= 0) fd = this.result(from);
        [r, err] = this.callOne(i, o, fd);
      }
      const expect = w[o + F.EXPECT];
      if (r >= 0 && (expect < 0 || r === expect)) {
        w[o + F.STATUS] = ST_OK;
        continue;
      }
      w[o + F.STATUS] = ST_FAILED;
      w[o + F.ERR] = err;
      failed++;
      if (!(flags & NOSTOP)) stopped = w[o + F.GROUP];
    }
    return failed;
  }

  /** One op through the per-call bindings: [return value, errno]. Sets the op's result and out_len. */
  private callOne(i: number, o: number, fd: number): [number, number] {
    const w = this.words;
    const code = w[o + F.CODE];
    const a1 = w[o + F.A1];
    const a2 = w[o + F.A2];
    const len = w[o + F.LEN] >>> 0;
    const base = w[o + F.BASE];
    const inlineAddr = this.mem.addr + this.dataOff(i);
    const lenAddr = this.mem.addr + (i + 1) * REC + F.OUT_LEN * 4;
    const addr = base === BASE_INLINE ? inlineAddr : base === BASE_ABSOLUTE ? w[o + F.ADDR + 1] * 0x100000000 + (w[o + F.ADDR] >>> 0) : -1;
    const u8 = base > 0 ? this.args[base - 1].subarray(w[o + F.ADDR] >>> 0) : undefined;
    let r: number;
    switch (code) {
      case OP.SETSOCKOPT:
        r = invoke(fns.setsockopt, [fd, a1, a2, addr, len]);
        break;
      case OP.GETSOCKOPT:
      case OP.GETSOCKNAME:
        w[o + F.OUT_LEN] = len;
        r = code === OP.GETSOCKOPT ? invoke(fns.getsockopt, [fd, a1, a2, addr, lenAddr]) : invoke(fns.getsockname, [fd, addr, lenAddr]);
        break;
      case OP.IOCTL:
        r = invoke(fns.ioctl, [fd, a1 >>> 0, addr]);
        break;
      case OP.RECV:
        r = u8 ? invokeU8(recvU8, [fd, u8, len, a1]) : invoke(fns.recv, [fd, addr, len, a1]);
        break;
      case OP.SEND:
        return this.sendAllEach(o, fd, addr, u8, len, a1);
      case OP.SOCKET:
        r = invoke(fns.socket, [a1, a2, w[o + F.A3]]);
        break;
      case OP.BIND:
        r = invoke(fns.bind, [fd, addr, len]);
        break;
      case OP.CONNECT:
        r = invoke(fns.connect, [fd, addr, len]);
        break;
      case OP.SHUTDOWN:
        r = invoke(fns.shutdown, [fd, a1]);
        break;
      case OP.SENDTO:
        r = invoke(fns.sendto, [fd, addr, len, a1, inlineAddr, a2]);
        break;
      case OP.CLOSE:
        r = invoke(fns.close, [fd]);
        break;
      case OP.SETNS:
        r = invoke(fns.setns, [fd, a1]);
        break;
      case OP.PIDFD_GETFD:
        r = invoke(fns.pidfd_getfd, [fd, a1, a2]);
        break;
      case OP.KCMP_FILE:
        r = invoke(fns.syscall5, [SYS_KCMP, w[o + F.A3], a1, KCMP_FILE, fd, a2]);
        break;
      case OP.FSTAT_INO:
        try {
          this.mem.buf.writeBigUInt64LE(BigInt(fstatSync(fd).ino), this.dataOff(i));
          r = 0;
        } catch (err) {
          // Node's errno is the negated one
          this.setResult(o, -1);
          const errno = (err as NodeJS.ErrnoException).errno;
          return [-1, errno === undefined ? osConstants.errno.EBADF : Math.abs(errno)];
        }
        break;
      default:
        throw new RangeError(`unknown batch op ${code}`);
    }
    this.setResult(o, r);
    return [r, r < 0 ? lastErrno() : 0];
  }

  /** SEND_ALL through single sends: the loop native/soccr_batch.c runs. */
  private sendAllEach(o: number, fd: number, addr: number, u8: Buffer | undefined, len: number, flags: number): [number, number] {
    let off = 0;
    let chunk = len;
    let err = 0;
    for (let attempts = 0; off < len && attempts <= 1_000_000; attempts++) {
      const want = Math.min(chunk, len - off);
      const n = u8 ? invokeU8(sendU8, [fd, u8.subarray(off), want, flags]) : invoke(fns.send, [fd, addr + off, want, flags]);
      if (n > 0) {
        off += n;
        continue;
      }
      if (chunk > 1024) {
        chunk = Math.floor(chunk / 2);
        continue;
      }
      err = n < 0 ? lastErrno() : 0;
      break;
    }
    this.setResult(o, off);
    return off === len ? [off, 0] : [-2, err];
  }

  private setResult(o: number, r: number): void {
    this.words[o + F.RESULT] = (r % 0x100000000) | 0;
    this.words[o + F.RESULT + 1] = Math.floor(r / 0x100000000);
  }

  // ---- outcomes ----

  ok(i: number): boolean {
    return this.word(i, F.STATUS) === ST_OK;
  }

  failed(i: number): boolean {
    return this.word(i, F.STATUS) === ST_FAILED;
  }

  /** The first op in [from, to) that failed, or -1. */
  firstFailure(from = 0, to = this.count): number {
    for (let i = from; i < to; i++) if (this.word(i, F.STATUS) === ST_FAILED) return i;
    return -1;
  }

  /** The call's return value (bytes sent, for sendAll). */
  result(i: number): number {
    return this.word(i, F.RESULT + 1) * 0x100000000 + (this.word(i, F.RESULT) >>> 0);
  }

  errno(i: number): number {
    return this.word(i, F.ERR);
  }

  /** The inode an fstatIno op read. */
  inode(i: number): number {
    return Number(this.mem.buf.readBigUInt64LE(this.dataOff(i)));
  }

  /** The int an op read (getInt, ioctlInt). */
  int(i: number): number {
    return this.mem.buf.readInt32LE(this.dataOff(i));
  }

  /** The bytes an op read (getBytes, getsockname), as the kernel's length says: a view, valid until the next reset. */
  bytes(i: number): Buffer {
    const off = this.dataOff(i);
    return this.mem.buf.subarray(off, off + Math.min(this.word(i, F.OUT_LEN) >>> 0, INLINE_BYTES));
  }

  /** A failed op as the per-call bindings would have thrown it. */
  error(i: number, context?: string): SyscallError {
    const code = this.word(i, F.CODE);
    const a1 = this.word(i, F.A1);
    const a2 = this.word(i, F.A2);
    const ctx = context ?? (code === OP.SETSOCKOPT || code === OP.GETSOCKOPT ? `${a1}/${a2}` : code === OP.IOCTL ? `0x${(a1 >>> 0).toString(16)}` : undefined);
    return new SyscallError(OP_NAMES[code] ?? `op ${code}`, this.word(i, F.ERR), ctx);
  }
}

function invokeU8(s: CallSpec, args: unknown[]): number {
  (s as unknown as { paramsValue: unknown[] }).paramsValue = args;
  callCount++;
  return load(s as unknown as Parameters<typeof load>[0]) as unknown as number;
}

// ---- peer credentials --------------------------------------------------------------------------

/** Who is at the other end of a Unix socket, as of its connect(). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
  /** supplementary groups (SO_PEERGROUPS); empty where the kernel does not report them */
  groups: number[];
}

const ucred = pinned(12); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
let groupsOut = pinned(64 * 4);

/** SO_PEERCRED (and SO_PEERGROUPS) of a connected Unix socket. */
export function peerCredentials(fd: number): PeerCredentials {
  const n = getsockoptBytes(fd, SOL_SOCKET, SO.PEERCRED, ucred, 12);
  if (n < 12) throw new SyscallError('getsockopt', osConstants.errno.EINVAL, `SO_PEERCRED returned ${n} bytes`);
  const b = ucred.buf;
  return { pid: b.readInt32LE(0), uid: b.readUInt32LE(4), gid: b.readUInt32LE(8), groups: peerGroups(fd) };
}

function peerGroups(fd: number): number[] {
  for (let attempt = 0; attempt < 3; attempt++) {
    const n = tryGetsockoptBytes(fd, SOL_SOCKET, SO.PEERGROUPS, groupsOut, groupsOut.buf.length);
    if (n >= 0) {
      const groups: number[] = [];
      for (let off = 0; off + 4 <= n; off += 4) groups.push(groupsOut.buf.readUInt32LE(off));
      return groups;
    }
    // ERANGE: the kernel wrote the length it needs into optlen
    if (n !== -osConstants.errno.ERANGE) return [];
    groupsOut = pinned(scratch.buf.readUInt32LE(LEN_OFF));
  }
  return [];
}

// ---- SCM_RIGHTS --------------------------------------------------------------------------------

const SCM_RIGHTS = 1;
const MSG_CTRUNC = 0x8;
const MAX_FDS_PER_MSG = 16;
// One block holds msghdr (56 bytes), one iovec (16) and the control buffer.
const MSGHDR_OFF = 0;
const IOV_OFF = 64;
const CMSG_OFF = 128;
const CMSG_SPACE_MAX = 16 + MAX_FDS_PER_MSG * 4;
const msgBlock = pinned(CMSG_OFF + CMSG_SPACE_MAX);

function fillMsghdr(data: PinnedBuffer, dataLen: number, controlLen: number): void {
  const b = msgBlock.buf;
  b.fill(0, 0, CMSG_OFF);
  b.writeBigUInt64LE(0n, MSGHDR_OFF); // msg_name
  b.writeUInt32LE(0, MSGHDR_OFF + 8); // msg_namelen
  b.writeBigUInt64LE(BigInt(msgBlock.addr + IOV_OFF), MSGHDR_OFF + 16); // msg_iov
  b.writeBigUInt64LE(1n, MSGHDR_OFF + 24); // msg_iovlen
  b.writeBigUInt64LE(controlLen ? BigInt(msgBlock.addr + CMSG_OFF) : 0n, MSGHDR_OFF + 32); // msg_control
  b.writeBigUInt64LE(BigInt(controlLen), MSGHDR_OFF + 40); // msg_controllen
  b.writeBigUInt64LE(BigInt(data.addr), IOV_OFF);
  b.writeBigUInt64LE(BigInt(dataLen), IOV_OFF + 8);
}

function fillRights(data: PinnedBuffer, dataLen: number, fds: readonly number[]): void {
  if (fds.length > MAX_FDS_PER_MSG) throw new RangeError(`at most ${MAX_FDS_PER_MSG} fds per message`);
  const cmsgLen = 16 + 4 * fds.length;
  const space = fds.length ? 16 + Math.ceil((4 * fds.length) / 8) * 8 : 0;
  fillMsghdr(data, dataLen, space);
  if (fds.length) {
    const b = msgBlock.buf;
    b.fill(0, CMSG_OFF, CMSG_OFF + space);
    b.writeBigUInt64LE(BigInt(cmsgLen), CMSG_OFF);
    b.writeInt32LE(SOL_SOCKET, CMSG_OFF + 8);
    b.writeInt32LE(SCM_RIGHTS, CMSG_OFF + 12);
    fds.forEach((fd, i) => b.writeInt32LE(fd, CMSG_OFF + 16 + 4 * i));
  }
}

/** sendmsg with `fds` as SCM_RIGHTS ancillary data; returns bytes of `data` sent. */
export function sendFds(sock: number, data: PinnedBuffer, dataLen: number, fds: readonly number[]): number {
  fillRights(data, dataLen, fds);
  return check(invoke(fns.sendmsg, [sock, msgBlock.addr + MSGHDR_OFF, MSG_NOSIGNAL]), 'sendmsg');
}

/**
 * sendFds that returns -errno instead of throwing (EAGAIN is routine on non-blocking sockets). On a
 * stream socket the fds travel with the first byte sent: after a partial send, send the rest without.
 */
export function trySendFds(sock: number, data: PinnedBuffer, dataLen: number, fds: readonly number[], flags = 0): number {
  fillRights(data, dataLen, fds);
  const r = invoke(fns.sendmsg, [sock, msgBlock.addr + MSGHDR_OFF, flags | MSG_NOSIGNAL]);
  return r < 0 ? -lastErrno() : r;
}

export interface ReceivedMessage {
  /** bytes received into the data buffer (0 at end of stream) */
  length: number;
  fds: number[];
}

const MSG_CMSG_CLOEXEC = 0x40000000;

/** recvmsg collecting SCM_RIGHTS fds (received close-on-exec); throws on failure (see tryRecvFds). */
export function recvFds(sock: number, data: PinnedBuffer, dataLen: number, flags = 0): ReceivedMessage {
  fillMsghdr(data, dataLen, CMSG_SPACE_MAX);
  const n = check(invoke(fns.recvmsg, [sock, msgBlock.addr + MSGHDR_OFF, flags | MSG_CMSG_CLOEXEC]), 'recvmsg');
  const fds = collectRights();
  if (fds === null) throw new SyscallError('recvmsg', osConstants.errno.EMSGSIZE, 'control data truncated');
  return { length: n, fds };
}

/**
 * recvFds that reports failure as a negative `length` (-errno) with no fds instead of throwing: for
 * polling a non-blocking socket, where EAGAIN is routine. Truncated control data is -EMSGSIZE (the
 * fds that did arrive are closed).
 */
export function tryRecvFds(sock: number, data: PinnedBuffer, dataLen: number, flags = 0): ReceivedMessage {
  fillMsghdr(data, dataLen, CMSG_SPACE_MAX);
  const n = invoke(fns.recvmsg, [sock, msgBlock.addr + MSGHDR_OFF, flags | MSG_CMSG_CLOEXEC]);
  if (n < 0) return { length: -lastErrno(), fds: [] };
  const fds = collectRights();
  return fds === null ? { length: -osConstants.errno.EMSGSIZE, fds: [] } : { length: n, fds };
}

/** The fds of the msghdr recvmsg just filled, or null (and those fds closed) if the kernel truncated them. */
function collectRights(): number[] | null {
  const b = msgBlock.buf;
  const controlLen = Number(b.readBigUInt64LE(MSGHDR_OFF + 40));
  const fds: number[] = [];
  let off = 0;
  while (off + 16 <= controlLen) {
    const len = Number(b.readBigUInt64LE(CMSG_OFF + off));
    if (len < 16) break;
    const level = b.readInt32LE(CMSG_OFF + off + 8);
    const type = b.readInt32LE(CMSG_OFF + off + 12);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let p = 16; p + 4 <= len; p += 4) fds.push(b.readInt32LE(CMSG_OFF + off + p));
    }
    off += Math.ceil(len / 8) * 8;
  }
  if (b.readInt32LE(MSGHDR_OFF + 48) & MSG_CTRUNC) {
    for (const fd of fds) closeQuietly(fd);
    return null;
  }
  return fds;
}

// ---- sockaddr ----------------------------------------------------------------------------------

const SUN_PATH_LEN = 108;

/**
 * A sockaddr_un for `path` and its length. A leading '@' names an abstract socket: the '@' becomes the
 * NUL byte that marks the abstract namespace, and the name is exactly its bytes (no terminating NUL).
 */
export function unixSockaddr(path: string): { addr: PinnedBuffer; len: number } {
  const name = Buffer.from(path, 'utf8');
  const abstract = path.startsWith('@');
  if (name.length < (abstract ? 2 : 1) || name.length > SUN_PATH_LEN - (abstract ? 0 : 1))
    throw new RangeError(`Unix socket address of ${name.length} bytes: ${path}`);
  const addr = pinned(2 + SUN_PATH_LEN);
  addr.buf.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr.buf, 2);
  if (abstract) addr.buf[2] = 0;
  return { addr, len: 2 + name.length + (abstract ? 0 : 1) };
}

/** The path of a bound Unix socket (abstract names as '@name'), or '' if it has none. */
export function unixSocketName(fd: number): string {
  const out = pinned(2 + SUN_PATH_LEN);
  const len = getsockname(fd, out);
  if (len <= 2 || out.buf.readUInt16LE(0) !== AF_UNIX) return '';
  const name = out.buf.subarray(2, len);
  if (name[0] === 0) return `@${name.subarray(1).toString('utf8')}`;
  const nul = name.indexOf(0);
  return name.subarray(0, nul < 0 ? name.length : nul).toString('utf8');
}

export const SOCKADDR_STORAGE = 128;

// ---- libnftables: nft's own library, in-process (no nft process per network-lock transaction) ----

const NFT_LIB = 'libnftables';
const SIG_SETMASK = 2;
/** sigset_t (glibc: 1024 bits) with every signal, and room for the mask it replaces. */
const allSignals = pinned(128);
allSignals.buf.fill(0xff);
const savedSignals = pinned(128);
const AF_NETLINK = 16;
const SOCK_RAW_NL = 3;
const NETLINK_NETFILTER = 12;
let nftLoaded: boolean | undefined;

/** Whether libnftables.so.1 loads in this process (it ships with Debian's nftables package). */
function nftLibrary(): boolean {
  if (nftLoaded === undefined) {
    try {
      open({ library: NFT_LIB, path: 'libnftables.so.1' });
      nftLoaded = true;
    } catch {
      nftLoaded = false;
    }
  }
  return nftLoaded;
}

function nftCall(funcName: string, retType: DataType, paramsType: DataType[], paramsValue: unknown[]): unknown {
  callCount++;
  return load({ library: NFT_LIB, funcName, retType, paramsType, paramsValue });
}

// libnftables 1.0.6 (Debian 12) waits on its netlink socket with select(), and glibc aborts the whole
// process when that fd is FD_SETSIZE or more. A daemon holding 1000+ sockets would get such an fd for
// a new context, so it keeps a few low fds open (on /dev/null) and frees them right before each
// nft_ctx_new: fds are allocated lowest first.
const FD_SETSIZE = 1024;
const LOW_FD_RESERVE = 4;
const lowFds: number[] = [];

/** Refills the reserve of low fds; call at start, while they are free. */
export function reserveLowFds(): void {
  while (lowFds.length < LOW_FD_RESERVE) {
    const fd = lowestFreeFdBelowSetSize();
    if (fd < 0) return;
    lowFds.push(fd);
  }
}

/** An fd below FD_SETSIZE, opened on /dev/null, or -1 when all of them are taken. */
function lowestFreeFdBelowSetSize(): number {
  const fd = openSync('/dev/null', 'r'); // O_CLOEXEC: libuv's default
  if (fd < FD_SETSIZE) return fd;
  closeSync(fd);
  return -1;
}

/**
 * An nftables context: its netlink socket belongs to the network namespace the calling thread is in
 * when it is created. Runs nft scripts (one transaction each) and reports their error text.
 */
export class NftContext {
  private constructor(private ctx: unknown) {}

  /** Whether libnftables loads here. */
  static available(): boolean {
    return nftLibrary();
  }

  /**
   * A context in the current network namespace, or why none can be made: libnftables missing, netfilter
   * netlink sockets refused (libnftables would exit the process on that), or no low fd for its socket.
   */
  static create(): NftContext | string {
    if (!nftLibrary()) return 'libnftables is missing';
    const probe = invoke(fns.socket, [AF_NETLINK, SOCK_RAW_NL | SOCK_CLOEXEC, NETLINK_NETFILTER]);
    if (probe < 0) return 'libnftables cannot open a netfilter netlink socket';
    invoke(fns.close, [probe]);
    // The context's socket takes the lowest free fd: the whole reserve is freed right before it (the
    // library opens and closes files there too).
    if (lowFds.length === 0) reserveLowFds();
    const freed = lowFds.splice(0);
    if (freed.length === 0) return `no file descriptor below ${FD_SETSIZE} is free for a libnftables socket (its select() would abort the daemon)`;
    for (const fd of freed) closeSync(fd);
    const ctx = nftCall('nft_ctx_new', DataType.External, [I32], [0]);
    // Its socket is at one of them or lower, unless another thread opened as many fds meanwhile.
    reserveLowFds();
    nftCall('nft_ctx_buffer_output', I32, [DataType.External], [ctx]);
    nftCall('nft_ctx_buffer_error', I32, [DataType.External], [ctx]);
    return new NftContext(ctx);
  }

  /**
   * Runs `script`; returns '' on success, else nft's error text. Signals are blocked meanwhile:
   * libnftables gives up on a netlink read that a signal interrupts (EINTR), and V8's profiler and
   * child processes send them at any time; they are delivered once the transaction is done.
   */
  run(script: string): string {
    return this.query(script).error;
  }

  /** Runs `script` and returns what it printed (a listing), and '' or nft's error text. */
  query(script: string): { output: string; error: string } {
    if (this.ctx === undefined) throw new Error('nft context used after free');
    let rc: number;
    invoke(fns.pthread_sigmask, [SIG_SETMASK, allSignals.addr, savedSignals.addr]);
    try {
      rc = nftCall('nft_run_cmd_from_buffer', I32, [DataType.External, DataType.String], [this.ctx, script]) as number;
    } finally {
      invoke(fns.pthread_sigmask, [SIG_SETMASK, savedSignals.addr, 0]);
    }
    const output = nftCall('nft_ctx_get_output_buffer', DataType.String, [DataType.External], [this.ctx]) as string;
    const err = nftCall('nft_ctx_get_error_buffer', DataType.String, [DataType.External], [this.ctx]) as string;
    if (rc === 0) return { output, error: '' };
    return { output, error: err.trim() || `nft_run_cmd_from_buffer returned ${rc}` };
  }

  free(): void {
    if (this.ctx === undefined) return;
    nftCall('nft_ctx_free', DataType.Void, [DataType.External], [this.ctx]);
    this.ctx = undefined;
  }
}
