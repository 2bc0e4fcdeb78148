// The saved state of one TCP connection: a plain, versioned value. The engine produces it on checkpoint
// and only reads it on restore, so one state can be restored any number of times.
import { SocketAddress } from './address';

export const STATE_VERSION = 1;

/** Kernel TCP states (include/net/tcp_states.h). */
export enum TcpState {
  ESTABLISHED = 1,
  SYN_SENT = 2,
  SYN_RECV = 3,
  FIN_WAIT1 = 4,
  FIN_WAIT2 = 5,
  TIME_WAIT = 6,
  CLOSE = 7,
  CLOSE_WAIT = 8,
  LAST_ACK = 9,
  LISTEN = 10,
  CLOSING = 11,
}

export const SUPPORTED_STATES: ReadonlySet<TcpState> = new Set([
  TcpState.ESTABLISHED,
  TcpState.SYN_SENT,
  TcpState.FIN_WAIT1,
  TcpState.FIN_WAIT2,
  TcpState.CLOSE_WAIT,
  TcpState.LAST_ACK,
  TcpState.CLOSING,
  TcpState.CLOSE,
]);

export function stateName(s: number): string {
  return TcpState[s] ?? `STATE_${s}`;
}

/** Whether a state number (from the wire, say) is one TcpState names. */
export function isTcpState(n: number): n is TcpState {
  return typeof TcpState[n] === 'string';
}

/**
 * A state as the kernel reports it (tcp_info, /proc/net/tcp, socket diagnostics), typed as the TcpState it
 * is: the enum is tcp_states.h's own numbering. A state a newer kernel adds keeps its number, equals no
 * member and stateName shows it as STATE_n.
 */
export function kernelTcpState(n: number): TcpState {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- the one place a kernel number becomes the enum: the same numbering, unknown states kept as they are
  return n;
}

/** tcpi_options bits. */
export const TCPI_OPT_TIMESTAMPS = 1;
export const TCPI_OPT_SACK = 2;
export const TCPI_OPT_WSCALE = 4;

/** struct tcp_repair_window. */
export interface RepairWindow {
  sndWl1: number;
  sndWnd: number;
  maxWindow: number;
  rcvWnd: number;
  rcvWup: number;
}

/** Ordinary socket options a user expects to survive a migration. */
export interface UserSocketOptions {
  reuseAddr: boolean;
  noDelay: boolean;
  cork: boolean;
  keepAlive: boolean;
  keepIdle: number;
  keepIntvl: number;
  keepCnt: number;
  userTimeout: number;
  congestion: string;
  /** As getsockopt reports them (the kernel doubles what setsockopt is given). */
  sndBuf: number;
  rcvBuf: number;
  /** IP_TOS for IPv4 sockets, IPV6_TCLASS for IPv6 ones. */
  tos: number;
  mark: number;
  /**
   * SO_BUF_LOCK: 1 = the send buffer size was set by the user, 2 = the receive buffer size. Unlocked sizes
   * are the kernel's autotuning, which must go on after a restore. 3 where the kernel cannot tell.
   */
  bufLock: number;
  /**
   * IP_TTL (IPv4 connections, IPv4-mapped ones included) or IPV6_UNICAST_HOPS (IPv6 ones), as the kernel
   * reports it (its namespace's default where none was set). Undefined: not carried (an older state).
   */
  ttl?: number;
  /** SO_PRIORITY (IP_TOS moves it on IPv4 sockets); undefined: not carried. */
  priority?: number;
  /** SO_RCVLOWAT in bytes (the kernel reports at least 1; 0: not carried). */
  rcvLowat: number;
  /** SO_RCVTIMEO and SO_SNDTIMEO in microseconds (0: none), at most Number.MAX_SAFE_INTEGER. */
  rcvTimeoutUs: number;
  sndTimeoutUs: number;
  /** SO_LINGER's l_linger in seconds when l_onoff is set (0: close resets); undefined when linger is off. */
  lingerSeconds?: number;
  reusePort: boolean;
  /** IPV6_V6ONLY (IPv6 sockets; false on IPv4 ones). */
  v6only: boolean;
  /** IP_FREEBIND. */
  freebind: boolean;
  /** SO_BINDTODEVICE: an interface name, '' for none. */
  bindDevice: string;
  /** TCP_NOTSENT_LOWAT in bytes (0: not set). */
  notsentLowat: number;
  /** TCP_WINDOW_CLAMP in bytes (0: not carried). */
  windowClamp: number;
}

/**
 * The options carried since fields 15-26 of soccr.v1.SocketOptions, as a state written before them
 * decodes: each one not carried, so that a restore leaves the kernel's default.
 */
export const OPTIONS_NOT_CARRIED = {
  ttl: undefined,
  priority: undefined,
  rcvLowat: 0,
  rcvTimeoutUs: 0,
  sndTimeoutUs: 0,
  lingerSeconds: undefined,
  reusePort: false,
  v6only: false,
  freebind: false,
  bindDevice: '',
  notsentLowat: 0,
  windowClamp: 0,
} as const satisfies Partial<UserSocketOptions>;

export interface SavedConnection {
  version: number;
  state: TcpState;
  /** Address family of the socket itself: an IPv4-mapped connection lives on an 'ipv6' socket. */
  socketFamily: 'ipv4' | 'ipv6';
  local: SocketAddress;
  remote: SocketAddress;
  /** rcv_nxt as the kernel reported it (a received FIN included). */
  inqSeq: number;
  /** write_seq as the kernel reported it (a sent FIN included). */
  outqSeq: number;
  /** Unread bytes in the receive queue. */
  inqLen: number;
  /** Bytes in the send queue (sent but unacknowledged, then never sent); a FIN not counted. */
  outqLen: number;
  /** The never-sent tail of the send queue. */
  unsentLen: number;
  mssClamp: number;
  /** tcpi_options: TCPI_OPT_* bits negotiated at connection setup. */
  tcpOptions: number;
  sndWscale: number;
  rcvWscale: number;
  /** TCP_TIMESTAMP value (0 when timestamps are off). */
  timestamp: number;
  /** Absent when the kernel lacks TCP_REPAIR_WINDOW. */
  window?: RepairWindow;
  recvQueue: Buffer;
  sendQueue: Buffer;
  options: UserSocketOptions;
}
