// Socket diagnostics (NETLINK_SOCK_DIAG): what a checkpoint would otherwise read with about eleven
// calls per socket (TCP_INFO, SIOCINQ/SIOCOUTQ/SIOCOUTQNSD, getsockname, SO_PEERNAME, TCP_CONGESTION,
// SO_SNDBUF/SO_RCVBUF, IP_TOS or IPV6_TCLASS, SO_MARK), for many sockets at once: one exact lookup per
// connection (by its 4-tuple, so the cost does not grow with the other sockets of the namespace), up
// to LOOKUPS_PER_SEND lookups in one sendmsg, the answers (one datagram each) read back in the same
// batch of kernel calls. Every call costs microseconds through ffi-rs; this turns eleven of them per
// socket into about one per hundred sockets.
//
// A socket the kernel does not find by its tuple (a connection in CLOSE is no longer hashed) gets no
// answer; its caller reads it the slow way. A dump of a whole namespace's TCP table (dumpTcpSockets)
// stands in for /proc/PID/net/tcp and tcp6, which the kernel renders as text a page at a time.
//
// Everything goes through daemon/kernel/native.ts; the netlink socket is made inside the target namespace
// (NetnsHandle) and used from the daemon's own.
import * as N from './native';
import { NetnsHandle } from './netns';
import { SOCKADDR_IN6_LEN, SOCKADDR_IN_LEN, SocketAddress, decodeSockaddr, isMappedIPv4, parseIPv4, parseIPv6 } from '../../protocol/address';
import { TcpState, kernelTcpState } from '../../protocol/saved-state';

/** What the kernel reports of one TCP socket, as its getsockopt/ioctl calls would. */
export interface SocketDiag {
  /** tcpi_state, tcpi_options and the window scales of TCP_INFO */
  state: TcpState;
  options: number;
  sndWscale: number;
  rcvWscale: number;
  /** rcv_nxt - copied_seq: SIOCINQ plus one when the peer's FIN is in */
  rqueue: number;
  /** write_seq - snd_una: SIOCOUTQ */
  wqueue: number;
  /** write_seq - snd_nxt: SIOCOUTQNSD (tcpi_notsent_bytes) */
  notsent: number;
  local: SocketAddress;
  remote: SocketAddress;
  /** the socket's inode: which socket the kernel found */
  inode: number;
  congestion?: string;
  /** IP_TOS (IPv4 sockets) or IPV6_TCLASS (IPv6 sockets) */
  tos?: number;
  sndBuf?: number;
  rcvBuf?: number;
  mark?: number;
  /** idiag_if: the index of the interface the socket is bound to (SO_BINDTODEVICE), 0 if none */
  boundIf: number;
  /** IPV6_V6ONLY (IPv6 sockets) */
  v6only?: boolean;
  /** IP_FREEBIND (Linux 5.10+) */
  freebind?: boolean;
  /** the socket holds TCP-MD5 keys (the only place the kernel tells it) */
  md5Keys: boolean;
}

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSG_HDR = 16;
const REQ_LEN = NLMSG_HDR + 56; // inet_diag_req_v2
const MSG_LEN = 72; // inet_diag_msg
const INET_DIAG_INFO = 2;
const INET_DIAG_CONG = 4;
const INET_DIAG_TOS = 5;
const INET_DIAG_TCLASS = 6;
const INET_DIAG_SKMEMINFO = 7;
const INET_DIAG_MARK = 15; // sent to CAP_NET_ADMIN requesters without being asked
const INET_DIAG_SKV6ONLY = 11; // sent for every IPv6 socket without being asked
const INET_DIAG_MD5SIG = 18; // the socket's TCP-MD5 keys: sent with INET_DIAG_INFO to CAP_NET_ADMIN requesters
const INET_DIAG_SOCKOPT = 22; // struct inet_diag_sockopt, sent without being asked (Linux 5.10+)
const SOCKOPT_FREEBIND = 1 << 2; // its first byte's bits: recverr, is_icsk, freebind, ...
const EXTENSIONS = [INET_DIAG_INFO, INET_DIAG_CONG, INET_DIAG_TOS, INET_DIAG_TCLASS, INET_DIAG_SKMEMINFO].reduce((m, e) => m | (1 << (e - 1)), 0);
const SK_MEMINFO_RCVBUF = 1;
const SK_MEMINFO_SNDBUF = 3;
/** Offset of tcpi_notsent_bytes in struct tcp_info (Linux 4.6 and later). */
const TCPI_NOTSENT_OFF = 144;
/** Lookups per sendmsg: their answers (about 400 bytes each) must fit the socket's receive buffer. */
const LOOKUPS_PER_SEND = 256;
const RCVBUF = 1 << 20;

const reqBuf = N.pinned(REQ_LEN * LOOKUPS_PER_SEND);
const respBuf = N.pinned(64 * 1024);
/**
 * The kernel answers lookups while sendmsg runs, one datagram each: the send and one recv per answer go
 * in one batch of kernel calls, each answer into its own slot (an answer is about 450 bytes).
 */
const ANSWER_SLOT = 2048;
let answerSlots: N.PinnedBuffer | undefined;
const lookupBatch = new N.KernelBatch(LOOKUPS_PER_SEND + 1);
const sockaddrBuf = Buffer.alloc(SOCKADDR_IN6_LEN);

/** A connection to look up: its addresses as its own host sees them. */
export interface DiagTuple {
  local: SocketAddress;
  remote: SocketAddress;
}

/**
 * One SOCK_DIAG_BY_FAMILY request for TCP at `off`: an exact lookup of `t` (with the extensions a
 * checkpoint reads), or, without `t`, a dump of `family`.
 */
function writeRequest(b: Buffer, off: number, seq: number, family: number, t?: DiagTuple): void {
  b.fill(0, off, off + REQ_LEN);
  b.writeUInt32LE(REQ_LEN, off);
  b.writeUInt16LE(SOCK_DIAG_BY_FAMILY, off + 4);
  b.writeUInt16LE(t ? NLM_F_REQUEST : NLM_F_REQUEST | NLM_F_DUMP, off + 6);
  b.writeUInt32LE(seq, off + 8);
  const r = off + NLMSG_HDR;
  b[r] = family;
  b[r + 1] = N.IPPROTO_TCP;
  b.writeUInt32LE(0xffffffff, r + 4); // every state
  if (!t) return;
  b[r + 2] = EXTENSIONS;
  // inet_diag_sockid: ports and addresses in network order, no interface, no cookie
  const v6 = family === N.AF_INET6;
  b.writeUInt16BE(t.local.port, r + 8);
  b.writeUInt16BE(t.remote.port, r + 10);
  (v6 ? parseIPv6(t.local.ip) : parseIPv4(t.local.ip)).copy(b, r + 12);
  (v6 ? parseIPv6(t.remote.ip) : parseIPv4(t.remote.ip)).copy(b, r + 28);
  b.writeUInt32LE(0xffffffff, r + 48);
  b.writeUInt32LE(0xffffffff, r + 52);
}

/** A NETLINK_SOCK_DIAG socket of the namespace (the daemon's own if undefined). */
function openDiagSocket(netns: NetnsHandle | undefined): number {
  const open = (): number => N.socket(16 /* AF_NETLINK */, N.SOCK_RAW | N.SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  return netns ? netns.run(open) : open();
}

/**
 * Reads answers (at most `maxReads` recvs) and hands each message to `visit` (its type, sequence
 * number, offset and length in respBuf) until `visit` returns true. False if the socket or a message
 * failed first.
 */
function readUntil(fd: number, maxReads: number, visit: Visitor): boolean {
  for (let reads = 0; reads < maxReads; reads++) {
    const n = N.recv(fd, respBuf, 0, respBuf.buf.length, 0);
    if (n <= 0) return false;
    const done = visitMessages(respBuf.buf, 0, n, visit);
    if (done !== undefined) return done;
  }
  return false;
}

type Visitor = (type: number, seq: number, off: number, len: number) => boolean;

/** Hands each netlink message in b[start, start+n) to `visit`: true once it says done, false if one is malformed, else undefined. */
function visitMessages(b: Buffer, start: number, n: number, visit: Visitor): boolean | undefined {
  for (let off = start; off + NLMSG_HDR <= start + n;) {
    const len = b.readUInt32LE(off);
    if (len < NLMSG_HDR || off + len > start + n) return false;
    if (visit(b.readUInt16LE(off + 4), b.readUInt32LE(off + 8), off, len)) return true;
    off += (len + 3) & ~3;
  }
  return undefined;
}

/** An address of inet_diag_sockid, formatted as getsockname would give it. */
function address(b: Buffer, family: number, portOff: number, addrOff: number): SocketAddress {
  sockaddrBuf.fill(0);
  sockaddrBuf.writeUInt16LE(family, 0);
  sockaddrBuf.writeUInt16BE(b.readUInt16BE(portOff), 2);
  if (family === N.AF_INET) {
    b.copy(sockaddrBuf, 4, addrOff, addrOff + 4);
    return decodeSockaddr(sockaddrBuf, SOCKADDR_IN_LEN);
  }
  b.copy(sockaddrBuf, 8, addrOff, addrOff + 16);
  return decodeSockaddr(sockaddrBuf, SOCKADDR_IN6_LEN);
}

/** One answer (an inet_diag_msg and its attributes), or undefined if it lacks what a checkpoint needs. */
function parseAnswer(b: Buffer, off: number, len: number): SocketDiag | undefined {
  const m = off + NLMSG_HDR;
  if (len < NLMSG_HDR + MSG_LEN) return undefined;
  const family = b[m];
  const d: Partial<SocketDiag> = {
    local: address(b, family, m + 4, m + 8),
    remote: address(b, family, m + 6, m + 24),
    rqueue: b.readUInt32LE(m + 56),
    wqueue: b.readUInt32LE(m + 60),
    inode: b.readUInt32LE(m + 68),
    boundIf: b.readUInt32LE(m + 40),
    md5Keys: false,
  };
  let tos: number | undefined;
  let tclass: number | undefined;
  for (let a = m + MSG_LEN; a + 4 <= off + len;) {
    const alen = b.readUInt16LE(a);
    const type = b.readUInt16LE(a + 2) & 0x3fff;
    if (alen < 4 || a + alen > off + len) break;
    const p = a + 4;
    const plen = alen - 4;
    if (type === INET_DIAG_INFO && plen >= TCPI_NOTSENT_OFF + 4) {
      d.state = kernelTcpState(b[p]);
      d.options = b[p + 5];
      d.sndWscale = b[p + 6] & 0x0f;
      d.rcvWscale = b[p + 6] >> 4;
      d.notsent = b.readUInt32LE(p + TCPI_NOTSENT_OFF);
    } else if (type === INET_DIAG_CONG && plen > 0) {
      const nul = b.indexOf(0, p);
      d.congestion = b.toString('latin1', p, nul < 0 || nul > p + plen ? p + plen : nul);
    } else if (type === INET_DIAG_TOS && plen >= 1) tos = b[p];
    else if (type === INET_DIAG_TCLASS && plen >= 1) tclass = b[p];
    else if (type === INET_DIAG_SKMEMINFO && plen >= 4 * (SK_MEMINFO_SNDBUF + 1)) {
      d.rcvBuf = b.readUInt32LE(p + 4 * SK_MEMINFO_RCVBUF);
      d.sndBuf = b.readUInt32LE(p + 4 * SK_MEMINFO_SNDBUF);
    } else if (type === INET_DIAG_MARK && plen >= 4) d.mark = b.readUInt32LE(p);
    else if (type === INET_DIAG_MD5SIG && plen > 0) d.md5Keys = true;
    else if (type === INET_DIAG_SKV6ONLY && plen >= 1) d.v6only = b[p] !== 0;
    else if (type === INET_DIAG_SOCKOPT && plen >= 1) d.freebind = (b[p] & SOCKOPT_FREEBIND) !== 0;
    a += (alen + 3) & ~3;
  }
  if (d.state === undefined || d.notsent === undefined) return undefined;
  // IP_TOS of an IPv4 socket, IPV6_TCLASS of an IPv6 one (an IPv4-mapped connection included).
  d.tos = family === N.AF_INET6 ? tclass : tos;
  return d as SocketDiag;
}

/**
 * Looks up each connection in the network namespace `netns` (the daemon's own if undefined). Returns,
 * in the same order, what the kernel reports of it, or undefined where it found none (or was given no
 * tuple). Never throws: whatever fails is left to the slow path.
 */
export function diagnose(netns: NetnsHandle | undefined, tuples: ReadonlyArray<DiagTuple | undefined>): Array<SocketDiag | undefined> {
  const out = new Array<SocketDiag | undefined>(tuples.length).fill(undefined);
  if (tuples.length === 0) return out;
  let fd = -1;
  try {
    fd = openDiagSocket(netns);
    N.setsockoptInt(fd, N.SOL_SOCKET, N.SO.RCVBUFFORCE, RCVBUF);
    // Only tuples a connection can have (both ends of one family, IPv4-mapped both or neither).
    const wanted: number[] = [];
    tuples.forEach((t, i) => {
      if (t && t.local.family === t.remote.family && isMappedIPv4(t.local) === isMappedIPv4(t.remote)) wanted.push(i);
    });
    for (let start = 0; start < wanted.length; start += LOOKUPS_PER_SEND) {
      const batch = wanted.slice(start, start + LOOKUPS_PER_SEND);
      batch.forEach((i, k) => {
        const t = tuples[i] as DiagTuple;
        writeRequest(reqBuf.buf, k * REQ_LEN, i + 1, t.local.family === 'ipv6' ? N.AF_INET6 : N.AF_INET, t);
      });
      // One answer per lookup: a socket, or an error (ENOENT: not found).
      let answered = 0;
      const visitIn =
        (b: Buffer): Visitor =>
        (type, seq, off, len) => {
          if (type === SOCK_DIAG_BY_FAMILY || type === NLMSG_ERROR || type === NLMSG_DONE) answered++;
          if (type === SOCK_DIAG_BY_FAMILY && seq >= 1 && seq <= tuples.length) out[seq - 1] = parseAnswer(b, off, len);
          return answered >= batch.length;
        };
      const slots = answerSlots ?? (answerSlots = N.pinned(ANSWER_SLOT * LOOKUPS_PER_SEND));
      const lb = lookupBatch.reset();
      const sent = lb.sendAll(fd, reqBuf.buf, 0, batch.length * REQ_LEN, 0);
      const reads = batch.map((_, k) => lb.recv(fd, slots.buf, k * ANSWER_SLOT, ANSWER_SLOT, N.MSG_DONTWAIT));
      lb.run();
      if (!lb.ok(sent)) throw lb.error(sent);
      let complete = false;
      const visitSlot = visitIn(slots.buf);
      for (let k = 0; k < reads.length && !complete && lb.ok(reads[k]); k++) {
        const v = visitMessages(slots.buf, k * ANSWER_SLOT, lb.result(reads[k]), visitSlot);
        if (v === false) return out;
        complete = v === true;
      }
      // Answers the batch did not get (more than one datagram each, or not queued yet) are read call by call.
      if (!complete && !readUntil(fd, 4 * LOOKUPS_PER_SEND, visitIn(respBuf.buf))) return out;
    }
    return out;
  } catch {
    return out;
  } finally {
    if (fd >= 0) N.closeQuietly(fd);
  }
}

/** A TCP socket of a namespace as a socket-diagnostics dump lists it (what /proc/net/tcp shows). */
export interface DumpedSocket {
  family: 'ipv4' | 'ipv6';
  local: SocketAddress;
  remote: SocketAddress;
  state: TcpState;
  /** rx_queue and tx_queue of /proc/net/tcp */
  recvQueue: number;
  sendQueue: number;
  inode: number;
}

/**
 * Every TCP socket of the namespace (the daemon's own if undefined), both families: the same table
 * /proc/PID/net/tcp and tcp6 print, a few times faster (no text, no walk restarted per page).
 * Undefined if the dump fails: the caller reads procfs then.
 */
export function dumpTcpSockets(netns: NetnsHandle | undefined): DumpedSocket[] | undefined {
  return dumpSockets(netns, N.IPPROTO_TCP, (r, m) => {
    const fam = r[m];
    return {
      family: fam === N.AF_INET6 ? 'ipv6' : 'ipv4',
      local: address(r, fam, m + 4, m + 8),
      remote: address(r, fam, m + 6, m + 24),
      state: kernelTcpState(r[m + 1]),
      recvQueue: r.readUInt32LE(m + 56),
      sendQueue: r.readUInt32LE(m + 60),
      inode: r.readUInt32LE(m + 68),
    };
  });
}

/**
 * The Multipath TCP sockets of the namespace (the daemon's own if undefined): inode and state of each,
 * listeners included. Undefined if the dump fails (no MPTCP diagnostics in this kernel).
 */
export function dumpMptcpSockets(netns: NetnsHandle | undefined): Array<{ inode: number; state: TcpState }> | undefined {
  return dumpSockets(netns, N.IPPROTO_MPTCP, (r, m) => ({ inode: r.readUInt32LE(m + 68), state: kernelTcpState(r[m + 1]) }));
}

const INET_DIAG_REQ_PROTOCOL = 3;

/**
 * Dumps every socket of `protocol` in the namespace, both families, each inet_diag_msg (at offset `m` of
 * `r`) made into a T by `read`. A protocol number above 255 goes in an INET_DIAG_REQ_PROTOCOL attribute
 * (the request's own field is a byte). Undefined if the dump fails: the caller has a fallback.
 */
function dumpSockets<T>(netns: NetnsHandle | undefined, protocol: number, read: (r: Buffer, m: number) => T): T[] | undefined {
  let fd = -1;
  try {
    fd = openDiagSocket(netns);
    const out: T[] = [];
    for (const family of [N.AF_INET, N.AF_INET6]) {
      const b = reqBuf.buf;
      writeRequest(b, 0, family, family);
      let len = REQ_LEN;
      if (protocol > 255) {
        b.writeUInt16LE(8, REQ_LEN);
        b.writeUInt16LE(INET_DIAG_REQ_PROTOCOL, REQ_LEN + 2);
        b.writeUInt32LE(protocol, REQ_LEN + 4);
        len += 8;
        b.writeUInt32LE(len, 0);
      }
      N.send(fd, reqBuf, 0, len, 0);
      let failed = false;
      // Bounded: a dump of a million sockets is ~1500 reads of 64 KiB.
      const done = readUntil(fd, 100_000, (type, _seq, off, mlen) => {
        if (type === NLMSG_DONE) return true;
        if (type === NLMSG_ERROR) return (failed = true);
        if (type === SOCK_DIAG_BY_FAMILY && mlen >= NLMSG_HDR + MSG_LEN) out.push(read(respBuf.buf, off + NLMSG_HDR));
        return false;
      });
      if (!done || failed) return undefined;
    }
    return out;
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) N.closeQuietly(fd);
  }
}
