// Original file: protos/soccr/v1/state.proto


/**
 * Ordinary socket options the owner expects to survive a migration. Read with getsockopt(2) on the
 * original socket and set again with setsockopt(2) on the restored one. The int32 fields carry the C
 * `int` getsockopt returned, unchanged (a value above 2^31 - 1, possible for SO_MARK, arrives negative).
 */
export interface SocketOptions {
  /**
   * SO_REUSEADDR as the owner had it, read with getsockopt(SOL_SOCKET, SO_REUSEADDR) before repair mode
   * was turned on (leaving repair mode clears it, so the engine restores it last).
   */
  'reuseAddr'?: (boolean);
  /**
   * TCP_NODELAY: getsockopt(SOL_TCP, TCP_NODELAY) != 0 (Nagle's algorithm off).
   */
  'noDelay'?: (boolean);
  /**
   * TCP_CORK: getsockopt(SOL_TCP, TCP_CORK) != 0.
   */
  'cork'?: (boolean);
  /**
   * SO_KEEPALIVE: getsockopt(SOL_SOCKET, SO_KEEPALIVE) != 0.
   */
  'keepAlive'?: (boolean);
  /**
   * TCP_KEEPIDLE: idle time before the first keepalive probe, in seconds.
   */
  'keepIdle'?: (number);
  /**
   * TCP_KEEPINTVL: interval between keepalive probes, in seconds.
   */
  'keepIntvl'?: (number);
  /**
   * TCP_KEEPCNT: unanswered keepalive probes before the connection is dropped.
   */
  'keepCnt'?: (number);
  /**
   * TCP_USER_TIMEOUT: how long transmitted data may stay unacknowledged, in milliseconds (0 = system
   * default).
   */
  'userTimeout'?: (number);
  /**
   * TCP_CONGESTION: name of the congestion control algorithm ("cubic", "bbr", ...), at most 15 bytes
   * (TCP_CA_NAME_MAX - 1), without the NUL terminator.
   */
  'congestion'?: (string);
  /**
   * SO_SNDBUF in bytes, as getsockopt(SOL_SOCKET, SO_SNDBUF) reports it (the kernel doubles what
   * setsockopt is given; restore halves it again).
   */
  'sndBuf'?: (number);
  /**
   * SO_RCVBUF in bytes, as getsockopt(SOL_SOCKET, SO_RCVBUF) reports it (doubled like snd_buf).
   */
  'rcvBuf'?: (number);
  /**
   * Traffic class byte: getsockopt(SOL_IP, IP_TOS) on an IPV4 socket, getsockopt(SOL_IPV6, IPV6_TCLASS)
   * on an IPV6 one.
   */
  'tos'?: (number);
  /**
   * SO_MARK: the packet mark (fwmark) used by policy routing and netfilter.
   */
  'mark'?: (number);
  /**
   * SO_BUF_LOCK (Linux 5.14+): bit 1 = the send buffer size was set by the user, bit 2 = the receive
   * buffer size. An unlocked size is the kernel's autotuning, which the restored socket keeps doing.
   * 3 where the kernel cannot tell.
   */
  'bufLock'?: (number);
}

/**
 * Ordinary socket options the owner expects to survive a migration. Read with getsockopt(2) on the
 * original socket and set again with setsockopt(2) on the restored one. The int32 fields carry the C
 * `int` getsockopt returned, unchanged (a value above 2^31 - 1, possible for SO_MARK, arrives negative).
 */
export interface SocketOptions__Output {
  /**
   * SO_REUSEADDR as the owner had it, read with getsockopt(SOL_SOCKET, SO_REUSEADDR) before repair mode
   * was turned on (leaving repair mode clears it, so the engine restores it last).
   */
  'reuseAddr': (boolean);
  /**
   * TCP_NODELAY: getsockopt(SOL_TCP, TCP_NODELAY) != 0 (Nagle's algorithm off).
   */
  'noDelay': (boolean);
  /**
   * TCP_CORK: getsockopt(SOL_TCP, TCP_CORK) != 0.
   */
  'cork': (boolean);
  /**
   * SO_KEEPALIVE: getsockopt(SOL_SOCKET, SO_KEEPALIVE) != 0.
   */
  'keepAlive': (boolean);
  /**
   * TCP_KEEPIDLE: idle time before the first keepalive probe, in seconds.
   */
  'keepIdle': (number);
  /**
   * TCP_KEEPINTVL: interval between keepalive probes, in seconds.
   */
  'keepIntvl': (number);
  /**
   * TCP_KEEPCNT: unanswered keepalive probes before the connection is dropped.
   */
  'keepCnt': (number);
  /**
   * TCP_USER_TIMEOUT: how long transmitted data may stay unacknowledged, in milliseconds (0 = system
   * default).
   */
  'userTimeout': (number);
  /**
   * TCP_CONGESTION: name of the congestion control algorithm ("cubic", "bbr", ...), at most 15 bytes
   * (TCP_CA_NAME_MAX - 1), without the NUL terminator.
   */
  'congestion': (string);
  /**
   * SO_SNDBUF in bytes, as getsockopt(SOL_SOCKET, SO_SNDBUF) reports it (the kernel doubles what
   * setsockopt is given; restore halves it again).
   */
  'sndBuf': (number);
  /**
   * SO_RCVBUF in bytes, as getsockopt(SOL_SOCKET, SO_RCVBUF) reports it (doubled like snd_buf).
   */
  'rcvBuf': (number);
  /**
   * Traffic class byte: getsockopt(SOL_IP, IP_TOS) on an IPV4 socket, getsockopt(SOL_IPV6, IPV6_TCLASS)
   * on an IPV6 one.
   */
  'tos': (number);
  /**
   * SO_MARK: the packet mark (fwmark) used by policy routing and netfilter.
   */
  'mark': (number);
  /**
   * SO_BUF_LOCK (Linux 5.14+): bit 1 = the send buffer size was set by the user, bit 2 = the receive
   * buffer size. An unlocked size is the kernel's autotuning, which the restored socket keeps doing.
   * 3 where the kernel cannot tell.
   */
  'bufLock': (number);
}
